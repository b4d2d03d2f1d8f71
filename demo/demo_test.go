package demo

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func get(t testing.TB, h http.Handler, method, target string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec.Result()
}

func body(t testing.TB, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return string(b)
}

func TestHandler(t *testing.T) {
	t.Parallel()
	h := Handler()
	tests := []struct {
		name        string
		method      string
		target      string
		wantStatus  int
		wantType    string // Content-Type prefix
		wantContain string // substring of the body
	}{
		{"index at root", http.MethodGet, "/", http.StatusOK, "text/html", `<script src="/socket.io/socket.io.js"></script>`},
		{"index loads the app", http.MethodGet, "/", http.StatusOK, "text/html", `<script src="chat.js"></script>`},
		{"script", http.MethodGet, "/chat.js", http.StatusOK, "text/javascript", `call("publish"`},
		{"stylesheet", http.MethodGet, "/style.css", http.StatusOK, "text/css", "grid-template-columns"},
		{"head", http.MethodHead, "/", http.StatusOK, "text/html", ""},
		{"missing file", http.MethodGet, "/nope.js", http.StatusNotFound, "", ""},
		{"no path escape", http.MethodGet, "/../demo.go", http.StatusNotFound, "", ""},
		{"hidden files are not embedded", http.MethodGet, "/vendor/.gitignore", http.StatusNotFound, "", ""},
		{"post refused", http.MethodPost, "/", http.StatusMethodNotAllowed, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := get(t, h, tt.method, tt.target)
			b := body(t, res)
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("%s %s: status %d, want %d", tt.method, tt.target, res.StatusCode, tt.wantStatus)
			}
			if ct := res.Header.Get("Content-Type"); tt.wantType != "" && !strings.HasPrefix(ct, tt.wantType) {
				t.Errorf("Content-Type %q, want prefix %q", ct, tt.wantType)
			}
			if tt.wantContain != "" && !strings.Contains(b, tt.wantContain) {
				t.Errorf("body lacks %q", tt.wantContain)
			}
			if tt.method == http.MethodHead && b != "" {
				t.Errorf("HEAD returned a body of %d bytes", len(b))
			}
			if tt.wantStatus == http.StatusOK {
				if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
					t.Errorf("X-Content-Type-Options %q, want nosniff", got)
				}
				if got := res.Header.Get("Cache-Control"); got != "no-cache" {
					t.Errorf("Cache-Control %q, want no-cache", got)
				}
				csp := res.Header.Get("Content-Security-Policy")
				for _, want := range []string{"frame-ancestors 'none'", "script-src 'self'", "default-src 'none'"} {
					if !strings.Contains(csp, want) {
						t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
					}
				}
			}
			if tt.wantStatus == http.StatusMethodNotAllowed && res.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow %q, want %q", res.Header.Get("Allow"), "GET, HEAD")
			}
		})
	}
}

// TestIndexAssets checks that every local asset index.html references is
// served, so a renamed file cannot leave the page broken.
func TestIndexAssets(t *testing.T) {
	t.Parallel()
	h := Handler()
	index := body(t, get(t, h, http.MethodGet, "/"))
	for _, attr := range []string{`src="`, `href="`} {
		for rest := index; ; {
			i := strings.Index(rest, attr)
			if i < 0 {
				break
			}
			rest = rest[i+len(attr):]
			ref := rest[:strings.IndexByte(rest, '"')]
			if strings.HasPrefix(ref, "/socket.io/") || strings.Contains(ref, ":") {
				continue // served by the gateway from ClientScript, or a data: URL
			}
			if res := get(t, h, http.MethodGet, "/"+ref); res.StatusCode != http.StatusOK {
				t.Errorf("index.html references %q, served with status %d", ref, res.StatusCode)
			}
		}
	}
}

// TestClientScript checks that ClientScript reports exactly what the build put
// in static/vendor: the bundle's bytes when it was copied there, nothing
// otherwise.
func TestClientScript(t *testing.T) {
	t.Parallel()
	got, ok := ClientScript()
	onDisk, err := os.ReadFile(filepath.Join("static", filepath.FromSlash(clientScriptPath)))
	switch {
	case err == nil:
		if !ok {
			t.Fatal("static/vendor/socket.io.min.js exists but ClientScript reports false")
		}
		if !bytes.Equal(got, onDisk) {
			t.Fatalf("ClientScript returned %d bytes, want the %d bytes on disk", len(got), len(onDisk))
		}
		if !bytes.Contains(got, []byte("Socket.IO")) {
			t.Error("the embedded bundle does not look like the socket.io client")
		}
	case os.IsNotExist(err):
		if ok || got != nil {
			t.Fatalf("no bundle on disk, but ClientScript returned %d bytes, %v", len(got), ok)
		}
		t.Log("static/vendor/socket.io.min.js absent (run `make vendor`); checked the absent case only")
	default:
		t.Fatalf("stat bundle: %v", err)
	}
}

func BenchmarkHandlerIndex(b *testing.B) {
	h := Handler()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	}
}
