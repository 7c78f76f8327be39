package engine

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"
)

// TLSConfig adds an HTTPS listener to the engine, beside the plain one, for clients that
// only speak TLS: the KPL's native daemon, and the Java SDK's HTTP/2 SubscribeToShard. It
// serves HTTP/1.1 and HTTP/2 (ALPN) with the same routes as the plain listener.
type TLSConfig struct {
	// Addr is the HTTPS listen address; "127.0.0.1:0" when empty.
	Addr string
	// CertFile and KeyFile are a PEM certificate and its key. When both are empty the
	// engine generates a self-signed certificate for 127.0.0.1, ::1 and localhost, valid
	// for a year; Engine.CertificatePEM returns it so clients can trust it.
	CertFile, KeyFile string
}

// tlsCertificate loads the configured certificate, or generates one, and returns it with
// its PEM encoding.
func (c *TLSConfig) tlsCertificate(now time.Time) (tls.Certificate, []byte, error) {
	switch {
	case c.CertFile != "" && c.KeyFile != "":
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return tls.Certificate{}, nil, fmt.Errorf("engine: tls: %w", err)
		}
		var certPEM []byte
		for _, der := range cert.Certificate {
			certPEM = append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
		}
		return cert, certPEM, nil
	case c.CertFile != "" || c.KeyFile != "":
		return tls.Certificate{}, nil, fmt.Errorf("engine: tls: CertFile and KeyFile go together (got cert %q, key %q)", c.CertFile, c.KeyFile)
	}
	return selfSigned(now)
}

// selfSigned generates an ECDSA P-256 certificate for the loopback names.
func selfSigned(now time.Time) (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("engine: tls: key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("engine: tls: serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "freshet-engine", Organization: []string{"Freshet"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("engine: tls: certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("engine: tls: certificate: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, certPEM, nil
}

// tlsListener wraps each accepted connection in TLS. The connections it returns hide
// their *tls.Conn type from net/http, which then reads the HTTP/2 preface itself instead
// of relying on the ALPN result (see Engine.listenTLS).
type tlsListener struct {
	net.Listener
	cfg *tls.Config
}

func (l *tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return decrypted{tls.Server(c, l.cfg)}, nil
}

// decrypted is a TLS connection seen as a plain net.Conn; the handshake runs on its first
// read or write.
type decrypted struct{ net.Conn }
