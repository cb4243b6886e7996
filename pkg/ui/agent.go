package ui

import (
	"github.com/medama-io/go-useragent"
	"github.com/medama-io/go-useragent/agents"
)

// osNames are the systems whose usual spelling differs from the parser's.
var osNames = map[agents.OS]string{agents.OSMacOS: "macOS"}

// describeAgent names the browser and system of a User-Agent header, such
// as "Safari on iOS", for a person who wants to recognise their own
// devices. The names come from the parser's fixed list, so a header made
// up to read like a message is shown as "Unknown browser", not as itself.
func describeAgent(header string) string {
	a := useragent.NewParser().Parse(header)
	browser, system := string(a.Browser()), string(a.OS())
	if name, ok := osNames[a.OS()]; ok {
		system = name
	}
	switch {
	case browser != "" && system != "":
		return browser + " on " + system
	case browser != "":
		return browser
	case system != "":
		return "A browser on " + system
	}
	return "Unknown browser"
}

// warmAgentParser builds the parser's tables, which NewParser does once
// per process.
func warmAgentParser() { useragent.NewParser() }
