// Package migrations holds the numbered SQL files that build the authz schema.
//
// Files are named NNN_description.sql, embedded into the binary and applied in
// order by [github.com/authz/authz/storage.Migrate]. A file that has landed on
// main is never edited: a change to the schema is a new file.
package migrations

import "embed"

// FS holds every migration file.
//
//go:embed *.sql
var FS embed.FS
