package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
)

// ticketPrefix starts every ticket.
const ticketPrefix = "tk_"

// IssueTicket makes a single-use ticket that stands for p on one event stream
// (SSE or WebSocket, in the query string) if used within TicketTTL.
func (a *Authenticator) IssueTicket(ctx context.Context, p *errand.Principal) (string, time.Time, error) {
	token := newToken(ticketPrefix)
	exp := a.cfg.Now().Add(a.cfg.TicketTTL).UTC()
	b, _ := json.Marshal(p)
	err := a.store.WithTx(ctx, func(tx storage.Tx) error { return tx.InsertTicket(HashToken(token), b, exp) })
	if err != nil {
		return "", time.Time{}, fmt.Errorf("issue ticket: %w", err)
	}
	return token, exp, nil
}

// RedeemTicket uses up a ticket and returns who it stands for.
func (a *Authenticator) RedeemTicket(ctx context.Context, ticket string) (errand.Principal, error) {
	var p errand.Principal
	if len(ticket) > 100 {
		return p, unauthorized("the ticket is not valid")
	}
	var raw []byte
	err := a.store.WithTx(ctx, func(tx storage.Tx) error {
		var err error
		raw, err = tx.TakeTicket(HashToken(ticket), a.cfg.Now())
		return err
	})
	if isNotFound(err) {
		return p, unauthorized("the ticket is not valid: unknown, already used or expired")
	}
	if err != nil {
		return p, fmt.Errorf("redeem ticket: %w", err)
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return p, fmt.Errorf("ticket principal: %w", err)
	}
	if p.ID == "" { // issued by an errand from before identities
		return errand.Principal{}, unauthorized("the ticket is not valid: get a new one")
	}
	p.Via = "ticket"
	return p, nil
}
