package device

import (
	ua "github.com/mileusna/useragent"
)

// browserNames and systemNames are the names Describe shows: the
// library's own list. A name it read from the header but does not list
// is whatever the header said, and the header is chosen by whoever signed
// in, so it is not shown.
var (
	browserNames = names(ua.Chrome, ua.Firefox, ua.Safari, ua.MobileSafari, ua.Edge, ua.Opera, ua.OperaMini,
		ua.OperaTouch, ua.Vivaldi, ua.SamsungBrowser, ua.InternetExplorer,
		ua.FacebookApp, ua.InstagramApp, ua.TiktokApp)
	systemNames = names(ua.Windows, ua.WindowsPhone, ua.Android, ua.MacOS, ua.IOS, ua.Linux, ua.FreeBSD,
		ua.ChromeOS, ua.BlackBerry, ua.Harmony)
)

func names(list ...string) map[string]bool {
	m := make(map[string]bool, len(list))
	for _, n := range list {
		m[n] = true
	}
	return m
}

// Describe names the browser and system of a User-Agent header, such as
// "Safari on iOS", for a person who wants to recognise their own devices:
// the account page's list of sign-ins and the security mails (pkg/notify)
// say it the same way. Only names from a fixed list are shown, never the
// header's own text, which whoever sent it chose.
//
// github.com/mileusna/useragent reads the header: it keeps a few
// kilobytes, where parsers built on tables keep megabytes of small objects
// that every garbage collection of the node would scan.
func Describe(header string) string {
	a := ua.Parse(header)
	browser, system := a.Name, a.OS
	// As a person knows them: Safari on a phone is Safari, and Chrome
	// without a window is still Chrome.
	switch browser {
	case ua.MobileSafari:
		browser = ua.Safari
	case ua.HeadlessChrome:
		browser = ua.Chrome
	}
	if !browserNames[browser] {
		browser = ""
	}
	if !systemNames[system] {
		system = ""
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
