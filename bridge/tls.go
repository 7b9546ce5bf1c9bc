package bridge

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
)

// Config is the TLS configuration of a connection to host (host:port), or
// nil when the bridge does not use TLS (on: the URL's scheme asks for it).
func (t TLS) Config(host string, on bool) (*tls.Config, error) {
	if !on && !t.Enabled {
		return nil, nil
	}
	name, _, err := net.SplitHostPort(host)
	if err != nil {
		name = host
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: name, InsecureSkipVerify: t.InsecureSkipVerify}
	if t.ServerName != "" {
		c.ServerName = t.ServerName
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls ca_file: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, errors.New("tls ca_file: no PEM certificates in it")
		}
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls cert_file/key_file: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// Credentials are the username and password to use: the options', else the URL's.
func (c *Config) Credentials(ep *Endpoint) (user, password string) {
	if c.Options.Username != "" {
		return c.Options.Username, c.Options.Password
	}
	return ep.User, ep.Password
}
