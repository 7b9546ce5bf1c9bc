package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/errandhq/errand/audit"
	"github.com/errandhq/errand/auth"
	"github.com/errandhq/errand/config"
	"github.com/errandhq/errand/storage"
)

// buildAccess builds authentication and the audit log (and loads the TLS
// certificate) before the server listens.
func (a *app) buildAccess(ctx context.Context) error {
	var err error
	if a.auth, err = newAuth(a.store, a.cfg, a.log); err != nil {
		return err
	}
	a.store.Listen(a.auth) // key revocations, on any node
	if a.audit, err = audit.New(a.store, &audit.Config{Retention: time.Duration(a.cfg.Audit.Retention),
		FailureWindow: time.Duration(a.cfg.Audit.FailureWindow), Log: a.log}); err != nil {
		return err
	}
	if a.cfg.TLS.CertFile != "" {
		a.certs = &certHolder{certFile: a.cfg.TLS.CertFile, keyFile: a.cfg.TLS.KeyFile}
		if err := a.certs.load(); err != nil {
			return err
		}
	}
	if !a.cfg.Dev && len(a.cfg.Auth.APIKeys) == 0 && len(a.cfg.Auth.JWT) == 0 {
		keys, err := a.store.ListAPIKeys(ctx, "")
		if err == nil && len(keys) == 0 {
			a.log.Warn("no credentials are configured yet: every request will be refused; make a key with " +
				"`errand keys create --name admin --role admin --tenant <tenant>`")
		}
	}
	return nil
}

// newAuth makes the authenticator the configuration describes.
func newAuth(store storage.Store, cfg *config.Config, log *slog.Logger) (*auth.Authenticator, error) {
	ac := cfg.Auth
	c := &auth.Config{Roles: ac.Roles, Issuer: ac.OAuth.Issuer, Audience: ac.OAuth.Audience,
		TokenTTL: time.Duration(ac.OAuth.TokenTTL), KeyRotation: time.Duration(ac.OAuth.KeyRotation),
		TicketTTL: time.Duration(ac.TicketTTL), Leeway: time.Duration(ac.Leeway), Log: log}
	for _, k := range ac.APIKeys {
		c.Keys = append(c.Keys, auth.ConfigKey{Name: k.Name, SHA256: k.SHA256, Tenant: k.Tenant, Roles: k.Roles})
	}
	for _, j := range ac.JWT {
		c.Issuers = append(c.Issuers, auth.IssuerConfig{Issuer: j.Issuer, Audience: j.Audience, Secret: j.Secret,
			PublicKeys: j.PublicKeys, JWKSURL: j.JWKSURL, JWKSRefresh: time.Duration(j.JWKSRefresh), Tenant: j.Tenant,
			SubjectClaim: j.Claims.Subject, TenantClaim: j.Claims.Tenant, RolesClaim: j.Claims.Roles})
	}
	return auth.New(store, c)
}

// warnExposed warns when errand listens beyond loopback without TLS: tokens
// would cross the network in the clear.
func (a *app) warnExposed() {
	addr := a.listener.Addr().(*net.TCPAddr)
	if a.certs == nil && !addr.IP.IsLoopback() {
		a.log.Warn("listening on a non-loopback address without TLS: bearer tokens and data cross the network in "+
			"the clear; set tls.cert_file and tls.key_file, or terminate TLS in front of errand", "addr", addr.String())
	}
}

// reloadCerts reads the certificate and key again (on SIGHUP); a failure keeps
// the old pair.
func (a *app) reloadCerts() {
	if a.certs == nil {
		a.log.Info("SIGHUP: no TLS certificate to reload")
		return
	}
	if err := a.certs.load(); err != nil {
		a.log.Error("SIGHUP: certificate reload failed; keeping the old one", "err", err)
		return
	}
	a.log.Info("SIGHUP: certificate reloaded", "cert_file", a.certs.certFile)
}

// certHolder serves the current certificate to new TLS handshakes.
type certHolder struct {
	certFile, keyFile string
	cert              atomic.Pointer[tls.Certificate]
}

func (h *certHolder) load() error {
	c, err := tls.LoadX509KeyPair(h.certFile, h.keyFile)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	h.cert.Store(&c)
	return nil
}

// config is the server's TLS configuration: HTTP/2 and HTTP/1.1 by ALPN, at
// least TLS 1.2 (or 1.3), Go's default cipher suites (all AEAD, forward secret).
func (h *certHolder) config(minVersion string) *tls.Config {
	v := uint16(tls.VersionTLS12)
	if minVersion == "1.3" {
		v = tls.VersionTLS13
	}
	return &tls.Config{MinVersion: v, NextProtos: []string{"h2", "http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return h.cert.Load(), nil }}
}
