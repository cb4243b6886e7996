package events

import (
	"context"
	"fmt"
	"io"
	"sync"
)

// The log stream's forms, as LATCHKEY_EVENT_LOG names them.
const (
	LogNone   = "none"
	LogStdout = "stdout"
	LogOTLP   = "otlp"
)

// JSONLines writes each event as one line of JSON (the webhook body) to
// W, for a log shipper to take to a SIEM. Lines are written whole, one at
// a time.
type JSONLines struct {
	mu sync.Mutex
	W  io.Writer
}

// WriteEvent writes payload and a newline.
func (j *JSONLines) WriteEvent(_ context.Context, payload []byte) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	line := make([]byte, 0, len(payload)+1)
	line = append(append(line, payload...), '\n')
	if _, err := j.W.Write(line); err != nil {
		return fmt.Errorf("events: write the event line: %w", err)
	}
	return nil
}
