package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
)

// MinRSABits is the smallest RSA modulus a Verifier accepts.
const MinRSABits = 2048

// LoadPublicKey parses the first PEM block in pemBytes that carries a public
// key: "PUBLIC KEY" (PKIX, RSA or ECDSA), "RSA PUBLIC KEY" (PKCS #1) or
// "CERTIFICATE" (its subject key; the certificate itself — dates, issuer,
// chain — is not checked: the key is pinned, not trusted through a PKI).
// Other blocks, such as "EC PARAMETERS", are skipped; a private key block is
// an error, so that a misplaced secret is noticed. The key must be usable by
// [New]: RSA of at least MinRSABits bits, or ECDSA on P-256. Errors wrap
// ErrKey.
func LoadPublicKey(pemBytes []byte) (crypto.PublicKey, error) {
	rest := pemBytes
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("%w: no PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE PEM block found", ErrKey)
		}
		var (
			key any
			err error
		)
		switch block.Type {
		case "PUBLIC KEY":
			key, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			key, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				key = cert.PublicKey
			}
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "OPENSSH PRIVATE KEY":
			return nil, fmt.Errorf("%w: PEM holds a %s; give the public key", ErrKey, block.Type)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%w: parse %s: %v", ErrKey, block.Type, err)
		}
		if _, _, err := checkPublicKey(key); err != nil {
			return nil, err
		}
		return key, nil
	}
}

// checkPublicKey sorts a configured public key into the RSA or ECDSA slot,
// refusing anything a Verifier cannot use safely.
func checkPublicKey(key crypto.PublicKey) (*rsa.PublicKey, *ecdsa.PublicKey, error) {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k == nil || k.N == nil {
			return nil, nil, fmt.Errorf("%w: empty RSA key", ErrKey)
		}
		if bits := k.N.BitLen(); bits < MinRSABits {
			return nil, nil, fmt.Errorf("%w: RSA key has %d bits, need at least %d", ErrKey, bits, MinRSABits)
		}
		if k.E < 3 || k.E%2 == 0 {
			return nil, nil, fmt.Errorf("%w: bad RSA public exponent", ErrKey)
		}
		return k, nil, nil
	case *ecdsa.PublicKey:
		if k == nil || k.Curve == nil {
			return nil, nil, fmt.Errorf("%w: empty ECDSA key", ErrKey)
		}
		if k.Curve != elliptic.P256() {
			return nil, nil, fmt.Errorf("%w: ECDSA key on %s, ES256 needs P-256", ErrKey, k.Curve.Params().Name)
		}
		if _, err := k.Bytes(); err != nil { // not a point on the curve
			return nil, nil, fmt.Errorf("%w: invalid ECDSA key: %v", ErrKey, err)
		}
		return nil, k, nil
	case *rsa.PrivateKey, *ecdsa.PrivateKey:
		return nil, nil, fmt.Errorf("%w: got a private key (%T); give its public key", ErrKey, key)
	}
	return nil, nil, fmt.Errorf("%w: %T (want *rsa.PublicKey or *ecdsa.PublicKey)", ErrKey, key)
}
