package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"testing"
	"time"
)

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// selfSigned returns a PEM certificate for pub signed by priv.
func selfSigned(tb testing.TB, pub, priv any) []byte {
	tb.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "roomcast test issuer"},
		NotBefore:    time.Unix(0, 0),
		NotAfter:     time.Unix(1, 0), // long expired: LoadPublicKey pins the key, ignores dates
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		tb.Fatal(err)
	}
	return pemBlock("CERTIFICATE", der)
}

func TestLoadPublicKey(t *testing.T) {
	t.Parallel()
	k := keys(t)
	rsaPKCS1 := pemBlock("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey))
	ecParams := pemBlock("EC PARAMETERS", []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07})

	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384PEM, err := pemPublicKey(&p384.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPEM, err := pemPublicKey(edPub)
	if err != nil {
		t.Fatal(err)
	}
	rsaPriv, err := x509.MarshalPKCS8PrivateKey(k.rsa)
	if err != nil {
		t.Fatal(err)
	}
	ecPriv, err := x509.MarshalECPrivateKey(k.ec)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		pem  []byte
		want any // the public key expected, or nil for an ErrKey failure
	}{
		{"rsa pkix", k.rsaPEM, &k.rsa.PublicKey},
		{"rsa pkcs1", rsaPKCS1, &k.rsa.PublicKey},
		{"rsa certificate", selfSigned(t, &k.rsa.PublicKey, k.rsa), &k.rsa.PublicKey},
		{"ec pkix", k.ecPEM, &k.ec.PublicKey},
		{"ec certificate", selfSigned(t, &k.ec.PublicKey, k.ec), &k.ec.PublicKey},
		{"ec after parameters block", append(ecParams, k.ecPEM...), &k.ec.PublicKey},
		{"leading text", append([]byte("issuer key:\n"), k.rsaPEM...), &k.rsa.PublicKey},
		{"first key wins", append(append([]byte{}, k.ecPEM...), k.rsaPEM...), &k.ec.PublicKey},
		{"empty", nil, nil},
		{"not pem", []byte("-----BEGIN NOTHING"), nil},
		{"only parameters", ecParams, nil},
		{"p384", p384PEM, nil},
		{"ed25519", edPEM, nil},
		{"pkcs8 private key", pemBlock("PRIVATE KEY", rsaPriv), nil},
		{"ec private key", pemBlock("EC PRIVATE KEY", ecPriv), nil},
		{"private key before public", append(pemBlock("EC PRIVATE KEY", ecPriv), k.ecPEM...), nil},
		{"corrupt public key", pemBlock("PUBLIC KEY", []byte{0x30, 0x03, 0x01, 0x02}), nil},
		{"corrupt certificate", pemBlock("CERTIFICATE", []byte("nope")), nil},
		{"small rsa", pemBlock("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(smallRSA())), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := LoadPublicKey(tt.pem)
			if tt.want == nil {
				if !errors.Is(err, ErrKey) {
					t.Fatalf("LoadPublicKey = %T, %v; want ErrKey", got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadPublicKey: %v", err)
			}
			type equaler interface{ Equal(crypto.PublicKey) bool }
			if !got.(equaler).Equal(tt.want) {
				t.Fatalf("LoadPublicKey returned a different key (%T)", got)
			}
			// The loaded key is usable by New.
			if _, err := New(Config{PublicKey: got}); err != nil {
				t.Fatalf("New with loaded key: %v", err)
			}
		})
	}
}

// smallRSA is a 1024-bit modulus (not a real key; only its size matters).
func smallRSA() *rsa.PublicKey {
	return &rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), 1023), E: 65537}
}
