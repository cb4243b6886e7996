package smtptest

import (
	"encoding/base64"
	"io"
)

// base64Reader decodes a base64 body, which MIME wraps in lines.
func base64Reader(r io.Reader) io.Reader {
	return base64.NewDecoder(base64.StdEncoding, newlineSkipper{r})
}

// newlineSkipper drops the line breaks of a wrapped base64 body.
type newlineSkipper struct{ r io.Reader }

func (n newlineSkipper) Read(p []byte) (int, error) {
	k, err := n.r.Read(p)
	out := p[:0]
	for _, c := range p[:k] {
		if c != '\r' && c != '\n' {
			out = append(out, c)
		}
	}
	return len(out), err
}
