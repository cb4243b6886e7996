package main

import (
	"net/http"
	"testing"

	"github.com/latchkey/latchkey/pkg/client"
)

// This file attacks the admin API with tokens whose client has since
// lost the power they were issued with: each call is judged against the
// client as it is at that moment, not as it was when the token was
// issued.

func TestAnAdminTokenLosesWriteTheMomentItsClientIsDowngraded(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	operator := n.automation(t, client.AdminScope)
	leaked := n.automation(t, client.AdminScope)
	leaked.call(http.MethodPost, "/admin/roles", map[string]any{"name": "before"}).must(t, http.StatusCreated)

	operator.call(http.MethodPatch, "/admin/clients/"+leaked.clientID, map[string]any{"scope": client.AdminReadScope}).
		must(t, http.StatusOK)
	ans := leaked.call(http.MethodPost, "/admin/roles", map[string]any{"name": "after"})
	ans.problem(t, http.StatusForbidden, "")
	if ans.header.Get("WWW-Authenticate") == "" {
		t.Fatal("a 403 for a missing scope carries no WWW-Authenticate")
	}
	leaked.call(http.MethodGet, "/admin/roles", nil).must(t, http.StatusOK)

	// Given write again, the client still needs a token that has it: the
	// scope must be in both.
	operator.call(http.MethodPatch, "/admin/clients/"+leaked.clientID, map[string]any{"scope": client.AdminScope}).
		must(t, http.StatusOK)
	leaked.call(http.MethodPost, "/admin/roles", map[string]any{"name": "again"}).must(t, http.StatusCreated)
	reader := n.automation(t, client.AdminReadScope)
	operator.call(http.MethodPatch, "/admin/clients/"+reader.clientID, map[string]any{"scope": client.AdminScope}).
		must(t, http.StatusOK)
	reader.call(http.MethodPost, "/admin/roles", map[string]any{"name": "upgraded"}).problem(t, http.StatusForbidden, "")
}

func TestAnAdminTokenIssuedBeforeItsClientsSecretRotationIsRefused(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	leaked := n.automation(t, client.AdminScope)
	leaked.call(http.MethodGet, "/admin/clients", nil).must(t, http.StatusOK)

	_, secret, err := n.clients.RotateSecret(t.Context(), leaked.clientID, -1) // the default grace period
	if err != nil {
		t.Fatal(err)
	}
	leaked.call(http.MethodGet, "/admin/clients", nil).problem(t, http.StatusUnauthorized, "")
	// Replacing the client's metadata (PUT) does not forget the rotation.
	if _, _, err := n.clients.Update(t.Context(), leaked.clientID, func(c *client.Client) error {
		*c = client.Client{Name: "ci", GrantTypes: []string{client.GrantClientCredentials}, Scope: client.AdminScope}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	leaked.call(http.MethodGet, "/admin/clients", nil).problem(t, http.StatusUnauthorized, "")

	// A token from the new secret works, and so does one the old secret
	// gets during its grace period: that is what the grace period is for.
	fresh := n.clientToken(t, leaked.clientID, secret)
	n.adminCall(t, fresh, http.MethodGet, "/admin/clients", nil).must(t, http.StatusOK)
	graced := n.clientToken(t, leaked.clientID, leaked.secret)
	n.adminCall(t, graced, http.MethodGet, "/admin/clients", nil).must(t, http.StatusOK)
}

func TestADeletedClientsAdminTokenIsRefused(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	operator := n.automation(t, client.AdminScope)
	for _, format := range []string{client.FormatOpaque, client.FormatJWT} {
		leaked := n.automation(t, client.AdminScope, func(c *client.Client) { c.AccessTokenFormat = format })
		leaked.call(http.MethodGet, "/admin/clients", nil).must(t, http.StatusOK)
		operator.call(http.MethodDelete, "/admin/clients/"+leaked.clientID, nil).must(t, http.StatusNoContent)
		leaked.call(http.MethodGet, "/admin/clients", nil).problem(t, http.StatusUnauthorized, "")
		leaked.call(http.MethodPost, "/admin/roles", map[string]any{"name": "after"}).problem(t, http.StatusUnauthorized, "")
	}
}
