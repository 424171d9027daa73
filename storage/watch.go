package storage

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// clientChannel is the PostgreSQL notification channel that announces a
// changed or deleted client, so that every replica drops its cached copy.
const clientChannel = "authz_client_changed"

// notifyClientChanged announces a client change. NOTIFY is transactional:
// listeners hear it when, and only if, the surrounding transaction commits.
func (s *Store) notifyClientChanged(ctx context.Context, id string) error {
	if _, err := s.db(ctx).Exec(ctx, `select pg_notify($1, $2)`, clientChannel, id); err != nil {
		return mapErr("notify client change", err)
	}
	return nil
}

// ClientWatcher receives client changes from [Store.WatchClients].
type ClientWatcher interface {
	// Listening is called each time the watcher starts listening, after
	// a (re)connection. Changes made while it was not listening were
	// missed, so a cache must be emptied here.
	Listening()
	// Lost is called when the connection is lost; until the next call to
	// Listening, changes go unheard.
	Lost(err error)
	// Changed is called with the ID of a client that changed.
	Changed(id string)
}

// WatchClients reports client changes made by any replica to w until ctx
// ends, on a connection of its own, reconnecting with backoff when the
// connection fails. It returns ctx's error.
func (s *Store) WatchClients(ctx context.Context, w ClientWatcher) error {
	backoff := 500 * time.Millisecond
	for {
		err := s.watchOnce(ctx, w)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		w.Lost(err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

func (s *Store) watchOnce(ctx context.Context, w ClientWatcher) error {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig)
	if err != nil {
		return mapErr("listen for client changes", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "listen "+clientChannel); err != nil {
		return mapErr("listen for client changes", err)
	}
	w.Listening()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return mapErr("wait for client changes", err)
		}
		if n.Channel == clientChannel {
			w.Changed(n.Payload)
		}
	}
}
