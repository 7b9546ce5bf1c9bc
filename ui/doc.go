// Package ui is errand's dashboard, served at /ui/ by the one binary.
//
// Pages are html/template, rendered on the server from what errand's
// services return for the signed-in principal (job.Service, channel.Service,
// webhook.Service, auth, audit): tenancy and permissions are theirs, the same
// as the REST API's. One small script (assets/app.js, no framework, no build
// step) follows the live pages' Server-Sent Events, whose data are HTML
// fragments the server rendered, and asks before destructive forms. Templates
// and assets are embedded with go:embed; nothing is loaded from elsewhere and
// the Content-Security-Policy allows only the dashboard's own script and style.
//
// Sign-in: in development mode (errand demo, serve --dev) none; otherwise an
// API key or an OAuth access token, kept with an in-memory session (session.go)
// whose cookie is HttpOnly, SameSite=Strict, Secure and __Host- over TLS. Every
// request authenticates the session's token again, so a revoked key ends it;
// every state-changing request carries the session's CSRF token, and
// cross-origin posts are refused (net/http's CrossOriginProtection).
package ui
