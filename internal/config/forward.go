package config

import (
	"strings"

	"github.com/rtmp-server/rtmp-server/internal/forward"
)

// forwardURLs parses FORWARD_URLS.
func (p *parser) forwardURLs(name string) []forward.Template {
	l, err := forward.ParseList(p.value(name))
	if err != nil {
		p.errs = append(p.errs, &varError{name: name, msg: err.Error(), cause: err})
	}
	return l
}

// forwardURLsText shows the templates, their stream names masked.
func forwardURLsText(l []forward.Template) string {
	s := make([]string, len(l))
	for i, t := range l {
		s[i] = t.String()
	}
	return strings.Join(s, ",")
}
