package ui

import (
	"fmt"
	"io/fs"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/web"
)

// TestStylesheetMeetsWCAGContrast checks the color pairs the pages use
// against WCAG 2.2 AA: 4.5:1 for text (§1.4.3: none of it is large
// enough for 3:1), and 3:1 for what shows where a field or button is and
// for the focus ring (§1.4.11). Each pair is read from the rules that
// paint it, so a change to either color, or to which color a rule uses,
// is checked.
func TestStylesheetMeetsWCAGContrast(t *testing.T) {
	css := readStylesheet(t)
	card := cssSide{".card", "background"}
	tests := []struct {
		what   string
		fg, bg cssSide
		min    float64
	}{
		{"text", cssSide{"body", "color"}, card, 4.5},
		{"lead text", cssSide{".lead", "color"}, card, 4.5},
		{"small print", cssSide{".detail", "color"}, card, 4.5},
		{"folded sections", cssSide{"details", "color"}, card, 4.5},
		{"technical detail labels", cssSide{".technical dt", "color"}, card, 4.5},
		{"profile labels", cssSide{".profile dt", "color"}, card, 4.5},
		{"brand", cssSide{".brand", "color"}, card, 4.5},
		{"links", cssSide{"a", "color"}, card, 4.5},
		{"placeholders", cssSide{"::placeholder", "color"}, cssSide{"input[type=text]", "background"}, 4.5},
		{"button text", cssSide{"button", "color"}, cssSide{"button", "background"}, 4.5},
		{"primary button text", cssSide{"button.primary", "color"}, cssSide{"button.primary", "background"}, 4.5},
		{"link button text", cssSide{"a.button", "color"}, cssSide{"a.button", "background"}, 4.5},
		{"first way on", cssSide{".ways li:first-child a", "color"}, cssSide{".ways li:first-child a", "background"}, 4.5},
		{"errors", cssSide{".error", "color"}, cssSide{".error", "background"}, 4.5},
		{"notices", cssSide{".notice", "color"}, cssSide{".notice", "background"}, 4.5},
		{"field borders", cssSide{"input[type=text]", "border"}, card, 3},
		{"button borders", cssSide{"button", "border"}, card, 3},
		{"ways' borders", cssSide{".ways a", "border"}, card, 3},
		{"primary buttons against the card", cssSide{"button.primary", "background"}, card, 3},
		{"focus ring", cssSide{":focus-visible", "outline"}, card, 3},
	}
	used := map[string]bool{}
	for _, tt := range tests {
		fg, fgVars := css.color(t, tt.fg)
		bg, bgVars := css.color(t, tt.bg)
		for _, v := range append(fgVars, bgVars...) {
			used[v] = true
		}
		ratio := contrast(fg.over(bg), bg)
		t.Logf("%-34s %5.2f:1 (at least %.1f)", tt.what, ratio, tt.min)
		if ratio < tt.min {
			t.Errorf("%s: %s (%s) on %s (%s) is %.2f:1, want at least %.1f:1", tt.what, tt.fg, fg, tt.bg, bg, ratio, tt.min)
		}
	}
	// A color that no pair above checks must be decoration, said here.
	decoration := map[string]string{
		"--line":   "the card's edge and the lines between sections, which identify nothing",
		"--bg":     "the page around the card, which holds no text",
		"--shadow": "the card's shadow",
	}
	for name := range css.vars {
		if !used[name] && decoration[name] == "" {
			t.Errorf("%s is in the palette but no pair checks it: add the pairs it is painted in, or say why it is decoration", name)
		}
	}
}

// TestStylesheetNamesEveryColorInItsPalette keeps every color in :root,
// where the contrast test finds them: a color written into a rule would
// escape it.
func TestStylesheetNamesEveryColorInItsPalette(t *testing.T) {
	css := readStylesheet(t)
	for _, r := range css.rules {
		if slices.Contains(r.selectors, ":root") {
			continue
		}
		for prop, value := range r.decls {
			if literalColor.MatchString(value) {
				t.Errorf("%s { %s: %s }: name the color in :root and use var()", strings.Join(r.selectors, ", "), prop, value)
			}
		}
	}
}

func TestContrastFollowsWCAG(t *testing.T) {
	// Figures from the WCAG definition: black on white is 21:1, a color on
	// itself 1:1, and #767676 is the lightest gray with 4.5:1 on white.
	white, black := rgba{255, 255, 255, 1}, rgba{0, 0, 0, 1}
	tests := []struct {
		a, b rgba
		want float64
	}{
		{black, white, 21},
		{white, white, 1},
		{rgba{0x76, 0x76, 0x76, 1}, white, 4.54},
		{rgba{36, 86, 214, .35}.over(white), white, 1.74}, // the focus ring before issue 14
	}
	for _, tt := range tests {
		if got := contrast(tt.a, tt.b); math.Abs(got-tt.want) > .01 {
			t.Errorf("contrast(%s, %s) = %.3f, want %.2f", tt.a, tt.b, got, tt.want)
		}
	}
}

// cssSide is one color of a pair: a rule's selector, as written in the
// stylesheet, and the property that paints it.
type cssSide struct{ selector, property string }

func (s cssSide) String() string { return s.selector + " " + s.property }

type cssRule struct {
	selectors []string
	decls     map[string]string
}

// stylesheet is what the contrast test reads of style.css: its rules in
// order, and the custom properties of :root.
type stylesheet struct {
	rules []cssRule
	vars  map[string]string
}

var (
	cssComment   = regexp.MustCompile(`(?s)/\*.*?\*/`)
	cssRuleBlock = regexp.MustCompile(`([^{}]+)\{([^{}]*)\}`)
	cssVar       = regexp.MustCompile(`var\((--[\w-]+)\)`)
	literalColor = regexp.MustCompile(`#[0-9a-fA-F]{3,8}\b|rgba?\([^)]*\)`)
)

func readStylesheet(t *testing.T) stylesheet {
	t.Helper()
	raw, err := fs.ReadFile(web.Static, "static/style.css")
	if err != nil {
		t.Fatal(err)
	}
	css := stylesheet{vars: map[string]string{}}
	// Rules inside @media match too: the at-rule's own brace never
	// encloses a rule without braces of its own.
	for _, m := range cssRuleBlock.FindAllStringSubmatch(cssComment.ReplaceAllString(string(raw), ""), -1) {
		r := cssRule{decls: map[string]string{}}
		for sel := range strings.SplitSeq(m[1], ",") {
			r.selectors = append(r.selectors, strings.Join(strings.Fields(sel), " "))
		}
		for decl := range strings.SplitSeq(m[2], ";") {
			if prop, value, ok := strings.Cut(decl, ":"); ok {
				r.decls[strings.TrimSpace(prop)] = strings.TrimSpace(value)
			}
		}
		if slices.Contains(r.selectors, ":root") {
			for prop, value := range r.decls {
				if strings.HasPrefix(prop, "--") && literalColor.MatchString(value) {
					css.vars[prop] = value
				}
			}
		}
		css.rules = append(css.rules, r)
	}
	return css
}

// color returns the color s paints, from the last rule for its selector
// that sets the property (or its longhand, such as border-color), and the
// palette names it went through.
func (css stylesheet) color(t *testing.T, s cssSide) (rgba, []string) {
	t.Helper()
	var value string
	for _, r := range css.rules {
		if !slices.Contains(r.selectors, s.selector) {
			continue
		}
		for _, prop := range []string{s.property, s.property + "-color"} {
			if v, ok := r.decls[prop]; ok {
				value = v
			}
		}
	}
	if value == "" {
		t.Fatalf("style.css has no rule for %s that sets %s", s.selector, s.property)
	}
	var names []string
	for range 5 {
		m := cssVar.FindStringSubmatch(value)
		if m == nil {
			break
		}
		names = append(names, m[1])
		v, ok := css.vars[m[1]]
		if !ok {
			t.Fatalf("%s: %s is not a color in :root", s, m[1])
		}
		value = v
	}
	c, err := parseColor(literalColor.FindString(value))
	if err != nil {
		t.Fatalf("%s: %q: %v", s, value, err)
	}
	return c, names
}

// rgba is a color with channels 0-255 and alpha 0-1.
type rgba struct{ r, g, b, a float64 }

func (c rgba) String() string {
	if c.a < 1 {
		return fmt.Sprintf("rgba(%.0f, %.0f, %.0f, %.2f)", c.r, c.g, c.b, c.a)
	}
	return fmt.Sprintf("#%02x%02x%02x", int(c.r), int(c.g), int(c.b))
}

// over is c painted on bg: what the eye sees of a translucent color.
func (c rgba) over(bg rgba) rgba {
	mix := func(f, b float64) float64 { return math.Round(c.a*f + (1-c.a)*b) }
	return rgba{mix(c.r, bg.r), mix(c.g, bg.g), mix(c.b, bg.b), 1}
}

func parseColor(s string) (rgba, error) {
	switch {
	case strings.HasPrefix(s, "#") && (len(s) == 4 || len(s) == 7):
		if len(s) == 4 {
			s = "#" + strings.Repeat(s[1:2], 2) + strings.Repeat(s[2:3], 2) + strings.Repeat(s[3:4], 2)
		}
		v, err := strconv.ParseUint(s[1:], 16, 32)
		return rgba{float64(v >> 16 & 255), float64(v >> 8 & 255), float64(v & 255), 1}, err
	case strings.HasPrefix(s, "rgb"):
		inner := s[strings.Index(s, "(")+1 : len(s)-1]
		var ch []float64
		for part := range strings.SplitSeq(inner, ",") {
			f, err := strconv.ParseFloat(strings.TrimSpace(part), 64)
			if err != nil {
				return rgba{}, err
			}
			ch = append(ch, f)
		}
		if len(ch) == 3 {
			ch = append(ch, 1)
		}
		if len(ch) != 4 {
			return rgba{}, fmt.Errorf("want 3 or 4 channels")
		}
		return rgba{ch[0], ch[1], ch[2], ch[3]}, nil
	}
	return rgba{}, fmt.Errorf("not a color this test reads")
}

// contrast is the WCAG 2.2 contrast ratio of two opaque colors.
func contrast(a, b rgba) float64 {
	la, lb := luminance(a), luminance(b)
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

// luminance is WCAG 2.2's relative luminance, from sRGB.
func luminance(c rgba) float64 {
	lin := func(v float64) float64 {
		v /= 255
		if v <= 0.04045 {
			return v / 12.92
		}
		return math.Pow((v+0.055)/1.055, 2.4)
	}
	return 0.2126*lin(c.r) + 0.7152*lin(c.g) + 0.0722*lin(c.b)
}
