package mail

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"sync"
)

// Console is the transport of a development node without a mail server:
// it prints each message's recipient, subject and links, so that a
// developer can follow them, and sends nothing.
type Console struct {
	mu  sync.Mutex
	out io.Writer
}

// NewConsole returns a Console that prints to out.
func NewConsole(out io.Writer) *Console { return &Console{out: out} }

var links = regexp.MustCompile(`https?://[^\s<>"]+`)

// Send prints e.
func (c *Console) Send(_ context.Context, e Envelope) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := fmt.Fprintf(c.out, "mail to %s: %s\n", e.To, e.Subject); err != nil {
		return err
	}
	for _, l := range links.FindAllString(e.Text, -1) {
		if _, err := fmt.Fprintf(c.out, "  %s\n", l); err != nil {
			return err
		}
	}
	return nil
}
