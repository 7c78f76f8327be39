package main

import (
	"errors"
	"flag"

	"github.com/freshet/freshet/internal/engine"
)

// tlsFlags defines the HTTPS listener's flags on fs and returns the function that reads
// them once parsed: nil unless -tls is set, an error for -tls-cert or -tls-key without it.
func tlsFlags(fs *flag.FlagSet) func() (*engine.TLSConfig, error) {
	on := fs.Bool("tls", false, "also serve HTTPS (HTTP/1.1 and HTTP/2) on -tls-addr")
	addr := fs.String("tls-addr", "127.0.0.1:4569", "HTTPS listen address, with -tls (port 0 picks a free port)")
	cert := fs.String("tls-cert", "", "PEM certificate for -tls (default: a generated self-signed one for 127.0.0.1 and localhost)")
	key := fs.String("tls-key", "", "PEM private key of -tls-cert")
	return func() (*engine.TLSConfig, error) {
		if !*on {
			if *cert != "" || *key != "" {
				return nil, errors.New("-tls-cert and -tls-key need -tls")
			}
			return nil, nil
		}
		return &engine.TLSConfig{Addr: *addr, CertFile: *cert, KeyFile: *key}, nil
	}
}
