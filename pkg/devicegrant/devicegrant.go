// Package devicegrant holds what the device authorization grant (RFC 8628)
// keeps between the device authorization endpoint, the /device page and the
// token endpoint: the device codes and their states, and the store they
// live in (storage/postgres). The protocol itself is pkg/oauth's device.go;
// this package is apart so that the store can name these types without
// importing the protocol.
package devicegrant

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Device codes move through these states (RFC 8628 §3.4, §3.5): pending
// until the user approves or denies them on /device, approved until the
// device polls and gets its tokens, then used.
const (
	Pending  = "pending"
	Approved = "approved"
	Denied   = "denied"
	Used     = "used"
)

// Errors of the device code store.
var (
	// ErrNotFound reports a device or user code that is not one
	// the store holds (any more), or that is not in the state asked for.
	ErrNotFound = errors.New("devicegrant: no such device code")
	// ErrLimit reports a client that already has as many device
	// codes waiting for approval as it may.
	ErrLimit = errors.New("devicegrant: too many pending device codes")
	// ErrUserCodeTaken reports a user code that another live request
	// holds; a new one is drawn.
	ErrUserCodeTaken = errors.New("devicegrant: user code taken")
)

// Code is a device authorization request as the store keeps it:
// neither code, only their digests (pkg/oauth device.go).
type Code struct {
	// ID is the grant's request ID, which its tokens share.
	ID             string
	DeviceCodeHash []byte
	UserCodeHash   []byte
	ClientID       string
	Scopes         []string
	Status         string
	// Interval is how long the device must wait between polls, now.
	Interval time.Duration
	// UserID is who approved or denied it; Session what an approval
	// granted (a *Session as JSON).
	UserID    string
	Session   json.RawMessage
	ExpiresAt time.Time
}

// Poll is what one poll of the token endpoint found: the device
// code as it was, and whether the poll came sooner than the interval
// allowed, in which case the interval has been raised by
// step for every node.
type Poll struct {
	Code
	TooSoon bool
}

// Store keeps device codes (storage/postgres). Every change of
// state is one conditional write, so that two nodes cannot both make it.
type Store interface {
	// CreateDeviceCode stores a new pending code, unless its client has
	// limit or more pending codes that have not expired (0: no limit):
	// ErrLimit. A user code digest that a stored code already
	// has is ErrUserCodeTaken.
	CreateDeviceCode(ctx context.Context, d Code, limit int) error
	// PollDeviceCode finds the code of client clientID by its digest,
	// records the poll, and raises the interval by step if the poll came
	// sooner than the interval after the last one; ErrNotFound
	// for another client's code or none.
	PollDeviceCode(ctx context.Context, deviceCodeHash []byte, clientID string, step time.Duration) (Poll, error)
	// DeviceCodeByUserCode finds a pending code that has not expired by
	// its user code digest; DeviceCodeByID by its ID, in any state.
	DeviceCodeByUserCode(ctx context.Context, userCodeHash []byte) (Code, error)
	DeviceCodeByID(ctx context.Context, id string) (Code, error)
	// DecideDeviceCode moves a pending code that has not expired to
	// approved (with the user and session) or denied;
	// ErrNotFound if it is not pending any more.
	DecideDeviceCode(ctx context.Context, id, status, userID string, session json.RawMessage) error
	// SpendDeviceCode moves an approved code to used;
	// ErrNotFound if another request did first.
	SpendDeviceCode(ctx context.Context, id string) error
}
