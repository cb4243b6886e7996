package main

import (
	"crypto/rand"
	"net/http"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// Sessions live in the app's memory, and the browser holds only a random
// ID, in a cookie that scripts cannot read (HttpOnly) and that other sites'
// forms do not send (SameSite=Lax). Tokens thus never reach the browser.
// An app with several instances keeps the same records in its database or
// Redis instead.
const (
	// sessionLifetime is how long a session lasts after sign-in, however
	// active; then the app asks Latchkey again (silently, while the user's
	// Latchkey session lasts).
	sessionLifetime = 8 * time.Hour
	// pendingLifetime is how long a sign-in may take, from leaving the app
	// to coming back to the callback.
	pendingLifetime = 10 * time.Minute
	// maxPending bounds the sign-ins under way per browser (one per tab).
	maxPending = 5
)

// session is what the app keeps for one browser. Its fields are replaced,
// never modified in place, so that a copy taken under the lock stays valid.
type session struct {
	expires time.Time
	// pending are the sign-ins under way in this browser, by state.
	pending map[string]pending
	// user is the signed-in user, nil before sign-in.
	user *user
}

// pending is a sign-in under way: what the callback checks the answer
// against, and where it goes afterwards.
type pending struct {
	started  time.Time
	nonce    string
	verifier string
	// returnTo is the app's own path to go back to.
	returnTo string
	// stepUp is what an API demanded of this sign-in, nil for a plain one;
	// challenge is the WWW-Authenticate header that demanded it.
	stepUp    *stepUp
	challenge string
}

// user is a signed-in user.
type user struct {
	// idToken is the raw ID token, for id_token_hint at sign-out.
	idToken string
	// claims are the verified ID token's claims.
	claims map[string]any
	// token holds the access token for the API.
	token *oauth2.Token
	// steppedUpFor is the challenge this sign-in answered, and steppedUpAt
	// when, so that a challenge that persists is shown, not followed
	// round in a loop.
	steppedUpFor string
	steppedUpAt  time.Time
}

// sessions is the session store.
type sessions struct {
	// cookie is the cookie's name; secure says the app is served over
	// https, where the cookie is marked Secure.
	cookie string
	secure bool

	mu        sync.Mutex
	byID      map[string]*session
	lastSweep time.Time
}

func newSessions(secure bool) *sessions {
	name := "notes_session"
	if secure {
		// __Host- binds the cookie to this host, https and path /.
		name = "__Host-notes_session"
	}
	return &sessions{cookie: name, secure: secure, byID: map[string]*session{}}
}

// get returns a copy of the browser's session, if it has a live one.
func (s *sessions) get(r *http.Request) (session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, _, ok := s.lookup(r)
	if !ok {
		return session{}, false
	}
	return *sess, true
}

// lookup finds the browser's live session; s.mu must be held.
func (s *sessions) lookup(r *http.Request) (*session, string, bool) {
	c, err := r.Cookie(s.cookie)
	if err != nil {
		return nil, "", false
	}
	sess, ok := s.byID[c.Value]
	if !ok || time.Now().After(sess.expires) {
		delete(s.byID, c.Value)
		return nil, "", false
	}
	return sess, c.Value, true
}

// addPending records a sign-in under way, starting a session for the
// browser if it has none.
func (s *sessions) addPending(w http.ResponseWriter, r *http.Request, state string, p pending) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, _, ok := s.lookup(r)
	if !ok {
		sess = &session{expires: time.Now().Add(sessionLifetime)}
		s.create(w, sess)
	}
	m := make(map[string]pending, len(sess.pending)+1)
	for k, v := range sess.pending {
		if time.Since(v.started) < pendingLifetime {
			m[k] = v
		}
	}
	for len(m) >= maxPending { // the oldest tab gives way
		oldest := ""
		for k, v := range m {
			if oldest == "" || v.started.Before(m[oldest].started) {
				oldest = k
			}
		}
		delete(m, oldest)
	}
	m[state] = p
	sess.pending = m
}

// takePending removes the sign-in under way for state and returns it, if
// this browser started it and it has not timed out. It can be taken once.
func (s *sessions) takePending(r *http.Request, state string) (pending, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, _, ok := s.lookup(r)
	if !ok {
		return pending{}, false
	}
	p, ok := sess.pending[state]
	if !ok {
		return pending{}, false
	}
	m := make(map[string]pending, len(sess.pending))
	for k, v := range sess.pending {
		if k != state {
			m[k] = v
		}
	}
	sess.pending = m
	return p, time.Since(p.started) < pendingLifetime
}

// signIn gives the browser a new session for u under a new ID, dropping
// the old one: an ID someone planted in the browser before sign-in
// (session fixation) is worth nothing after it. Sign-ins under way in
// other tabs carry over.
func (s *sessions) signIn(w http.ResponseWriter, r *http.Request, u *user) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := &session{expires: time.Now().Add(sessionLifetime), user: u}
	if old, id, ok := s.lookup(r); ok {
		next.pending = old.pending
		delete(s.byID, id)
	}
	s.create(w, next)
}

// end forgets the browser's session and clears its cookie.
func (s *sessions) end(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, id, ok := s.lookup(r); ok {
		delete(s.byID, id)
	}
	// #nosec G124 -- Secure is set whenever the app is served over https.
	http.SetCookie(w, &http.Cookie{Name: s.cookie, Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode})
}

// create stores sess under a new random ID and sets the cookie; s.mu must
// be held. Once a minute it first drops the sessions that have ended.
func (s *sessions) create(w http.ResponseWriter, sess *session) {
	if now := time.Now(); now.Sub(s.lastSweep) > time.Minute {
		for id, old := range s.byID {
			if now.After(old.expires) {
				delete(s.byID, id)
			}
		}
		s.lastSweep = now
	}
	id := rand.Text() // 26 base32 characters: 130 random bits
	s.byID[id] = sess
	// #nosec G124 -- Secure is set whenever the app is served over https;
	// a browser would drop a Secure cookie on the http://localhost dev setup.
	http.SetCookie(w, &http.Cookie{
		Name: s.cookie, Value: id, Path: "/",
		MaxAge:   int(time.Until(sess.expires).Seconds()),
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode,
	})
}
