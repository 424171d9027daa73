package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/authz/authz/resource"
)

// Limits keep one subject from filling the server's memory.
const (
	maxNotesPerSubject = 100
	maxNoteLength      = 1000
)

type note struct {
	Text      string    `json:"text"`
	CreatedAt time.Time `json:"created_at"`
}

// notes is an in-memory store of each subject's notes.
type notes struct {
	mu sync.Mutex
	by map[string][]note
}

// newAPI returns the API's handler: GET /notes needs the scope "read",
// POST /notes the scope "write"; each subject sees only its own notes.
func newAPI(v *resource.Verifier) http.Handler {
	n := &notes{by: make(map[string][]note)}
	mux := http.NewServeMux()
	mux.Handle("GET /notes", v.Middleware("read")(http.HandlerFunc(n.list)))
	mux.Handle("POST /notes", v.Middleware("write")(http.HandlerFunc(n.add)))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}

func (n *notes) list(w http.ResponseWriter, r *http.Request) {
	claims, _ := resource.ClaimsFrom(r.Context())
	n.mu.Lock()
	out := append([]note{}, n.by[claims.Subject]...)
	n.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"subject": claims.Subject, "notes": out})
}

func (n *notes) add(w http.ResponseWriter, r *http.Request) {
	claims, _ := resource.ClaimsFrom(r.Context())
	var in struct {
		Text string `json:"text"`
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "the body must be JSON like {\"text\": \"...\"}"})
		return
	}
	in.Text = strings.TrimSpace(in.Text)
	if in.Text == "" || utf8.RuneCountInString(in.Text) > maxNoteLength {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "text must be 1 to 1000 characters"})
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.by[claims.Subject]) >= maxNotesPerSubject {
		writeJSON(w, http.StatusConflict, map[string]string{"error": "at most 100 notes per subject"})
		return
	}
	created := note{Text: in.Text, CreatedAt: time.Now().UTC()}
	n.by[claims.Subject] = append(n.by[claims.Subject], created)
	writeJSON(w, http.StatusCreated, created)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
