package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/authz/authz/authz"
	"github.com/authz/authz/storage"
)

func cmdMigrate(ctx context.Context, args []string, e *env) error {
	o := newOptions("migrate", e)
	if err := o.parse(args); err != nil {
		return err
	}
	if err := o.envProblems(); err != nil {
		return err
	}
	log, err := o.logger()
	if err != nil {
		return err
	}
	store, err := open(ctx, o, log)
	if err != nil {
		return err
	}
	store.Close()
	fmt.Fprintln(e.stdout, "database is up to date")
	return nil
}

// withServer parses flags, checks the command line with check (before any
// connection, so usage errors do not wait on the database), runs fn with a
// server on a migrated database and closes it afterwards.
func withServer(ctx context.Context, o *options, args []string, check func() error, fn func(*authz.Server) error) error {
	if err := o.parse(args); err != nil {
		return err
	}
	if check != nil {
		if err := check(); err != nil {
			return err
		}
	}
	if len(o.args) > 0 && check == nil {
		return usageErr("unexpected argument %q", o.args[0])
	}
	srv, store, _, err := newServer(ctx, o)
	if err != nil {
		return err
	}
	defer store.Close()
	return fn(srv)
}

func splitList(s string) []string {
	f := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
	if len(f) == 0 {
		return nil
	}
	return f
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// clientJSON is how the CLI shows a client. The secret appears only right
// after it was generated.
type clientJSON struct {
	ClientID                string    `json:"client_id"`
	ClientSecret            string    `json:"client_secret,omitempty"`
	Name                    string    `json:"name"`
	Public                  bool      `json:"public"`
	TokenEndpointAuthMethod string    `json:"token_endpoint_auth_method"`
	GrantTypes              []string  `json:"grant_types"`
	Scopes                  []string  `json:"scopes"`
	Audiences               []string  `json:"audiences"`
	RedirectURIs            []string  `json:"redirect_uris"`
	MayIntrospect           bool      `json:"may_introspect"`
	CreatedAt               time.Time `json:"created_at"`
}

func toClientJSON(c *storage.Client, secret string) clientJSON {
	nz := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	return clientJSON{
		ClientID: c.ID, ClientSecret: secret, Name: c.Name, Public: c.Public,
		TokenEndpointAuthMethod: c.TokenEndpointAuthMethod, GrantTypes: nz(c.GrantTypes),
		Scopes: nz(c.Scopes), Audiences: nz(c.Audiences), RedirectURIs: nz(c.RedirectURIs),
		MayIntrospect: c.MayIntrospect, CreatedAt: c.CreatedAt,
	}
}

func cmdClients(ctx context.Context, args []string, e *env) error {
	if len(args) == 0 {
		return usageErr("authz clients create|list|get|delete|rotate-secret")
	}
	sub, args := args[0], args[1:]
	o := newOptions("clients "+sub, e)
	asJSON := o.fs.Bool("json", false, "print JSON")
	switch sub {
	case "create":
		var spec authz.ClientSpec
		var grants, scopes, auds, uris string
		o.fs.StringVar(&spec.Name, "name", "", "display name (required)")
		o.fs.StringVar(&spec.ID, "id", "", "client ID; random when empty")
		o.fs.StringVar(&grants, "grant-types", "", "comma-separated: password, refresh_token, client_credentials, authorization_code")
		o.fs.StringVar(&scopes, "scopes", "", `scopes the client may request, space- or comma-separated, e.g. "read write"`)
		o.fs.StringVar(&auds, "audiences", "", "comma-separated audiences (resource servers) of its tokens")
		o.fs.StringVar(&uris, "redirect-uris", "", "comma-separated redirect URIs, matched exactly")
		o.fs.BoolVar(&spec.Public, "public", false, "a public client: no secret (PKCE required)")
		o.fs.BoolVar(&spec.MayIntrospect, "introspect", false,
			"let the client introspect tokens issued to other clients, as a resource server does")
		o.fs.StringVar(&spec.TokenEndpointAuthMethod, "token-endpoint-auth-method", "",
			"how the client sends its secret: client_secret_basic (default) or client_secret_post")
		return withServer(ctx, o, args, nil, func(srv *authz.Server) error {
			spec.GrantTypes, spec.Scopes = splitList(grants), splitList(scopes)
			spec.Audiences, spec.RedirectURIs = splitList(auds), splitList(uris)
			c, secret, err := srv.CreateClient(ctx, spec)
			if err != nil {
				return err
			}
			if *asJSON {
				return printJSON(e.stdout, toClientJSON(c, secret))
			}
			fmt.Fprintf(e.stdout, "client_id:     %s\n", c.ID)
			if secret != "" {
				fmt.Fprintf(e.stdout, "client_secret: %s\n\nThe secret is shown only now; store it safely.\n", secret)
			}
			return nil
		})
	case "list":
		return withServer(ctx, o, args, nil, func(srv *authz.Server) error {
			cs, err := srv.Clients(ctx)
			if err != nil {
				return err
			}
			if *asJSON {
				out := make([]clientJSON, 0, len(cs))
				for _, c := range cs {
					out = append(out, toClientJSON(c, ""))
				}
				return printJSON(e.stdout, out)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CLIENT ID\tNAME\tTYPE\tGRANT TYPES\tSCOPES")
			for _, c := range cs {
				kind := "confidential"
				if c.Public {
					kind = "public"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.ID, c.Name, kind,
					strings.Join(c.GrantTypes, ","), strings.Join(c.Scopes, " "))
			}
			return tw.Flush()
		})
	case "get", "delete", "rotate-secret":
		check := func() error {
			if len(o.args) != 1 {
				return usageErr("authz clients %s CLIENT_ID", sub)
			}
			return nil
		}
		return withServer(ctx, o, args, check, func(srv *authz.Server) error {
			id := o.args[0]
			switch sub {
			case "get":
				c, err := srv.Client(ctx, id)
				if err != nil {
					return err
				}
				return printJSON(e.stdout, toClientJSON(c, ""))
			case "delete":
				if err := srv.DeleteClient(ctx, id); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "client %s deleted, with every token issued to it\n", id)
				return nil
			default:
				secret, err := srv.RotateClientSecret(ctx, id)
				if err != nil {
					return err
				}
				if *asJSON {
					return printJSON(e.stdout, map[string]string{"client_id": id, "client_secret": secret})
				}
				fmt.Fprintf(e.stdout, "client_secret: %s\n\nThe old secret no longer works. The new one is shown only now.\n", secret)
				return nil
			}
		})
	}
	return usageErr("unknown clients command %q", sub)
}

type userJSON struct {
	ID        string    `json:"id"`
	Username  string    `json:"username"`
	Disabled  bool      `json:"disabled"`
	CreatedAt time.Time `json:"created_at"`
}

func cmdUsers(ctx context.Context, args []string, e *env) error {
	if len(args) == 0 {
		return usageErr("authz users create|list|set-password|disable|enable")
	}
	sub, args := args[0], args[1:]
	o := newOptions("users "+sub, e)
	asJSON := o.fs.Bool("json", false, "print JSON")
	username := o.fs.String("username", "", "the user's username")
	needUsername := func() error {
		if *username == "" {
			return usageErr("--username is required")
		}
		if len(o.args) > 0 {
			return usageErr("unexpected argument %q", o.args[0])
		}
		return nil
	}
	switch sub {
	case "create", "set-password":
		return withServer(ctx, o, args, needUsername, func(srv *authz.Server) error {
			pw, err := readPassword(e)
			if err != nil {
				return err
			}
			if sub == "set-password" {
				if err := srv.SetPassword(ctx, *username, pw); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "password of %s changed; their tokens were revoked\n", *username)
				return nil
			}
			u, err := srv.CreateUser(ctx, *username, pw)
			if err != nil {
				return err
			}
			if *asJSON {
				return printJSON(e.stdout, userJSON{ID: u.ID, Username: u.Username, CreatedAt: u.CreatedAt})
			}
			fmt.Fprintf(e.stdout, "user %s created (subject %s)\n", u.Username, u.ID)
			return nil
		})
	case "disable", "enable":
		return withServer(ctx, o, args, needUsername, func(srv *authz.Server) error {
			if err := srv.SetUserDisabled(ctx, *username, sub == "disable"); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "user %s %sd\n", *username, sub)
			return nil
		})
	case "list":
		return withServer(ctx, o, args, nil, func(srv *authz.Server) error {
			us, err := srv.Users(ctx)
			if err != nil {
				return err
			}
			out := make([]userJSON, 0, len(us))
			for _, u := range us {
				out = append(out, userJSON{ID: u.ID, Username: u.Username, Disabled: u.Disabled, CreatedAt: u.CreatedAt})
			}
			if *asJSON {
				return printJSON(e.stdout, out)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "USERNAME\tSUBJECT\tDISABLED\tCREATED")
			for _, u := range out {
				fmt.Fprintf(tw, "%s\t%s\t%t\t%s\n", u.Username, u.ID, u.Disabled, u.CreatedAt.Format(time.RFC3339))
			}
			return tw.Flush()
		})
	}
	return usageErr("unknown users command %q", sub)
}

// readPassword reads a password from a terminal prompt (twice, without echo)
// or, when stdin is not a terminal, from its first line. Passwords never come
// from flags, which other users can read in the process list.
func readPassword(e *env) (string, error) {
	if f, ok := e.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(e.stderr, "Password: ")
		first, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %v", err)
		}
		fmt.Fprint(e.stderr, "Repeat password: ")
		second, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %v", err)
		}
		if string(first) != string(second) {
			return "", errors.New("the passwords do not match")
		}
		return string(first), nil
	}
	line, err := bufio.NewReader(io.LimitReader(e.stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %v", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password on standard input")
	}
	return line, nil
}

func cmdKeys(ctx context.Context, args []string, e *env) error {
	if len(args) == 0 {
		return usageErr("authz keys list|rotate")
	}
	sub, args := args[0], args[1:]
	o := newOptions("keys "+sub, e)
	o.serverFlags()
	asJSON := o.fs.Bool("json", false, "print JSON")
	switch sub {
	case "list":
		return withServer(ctx, o, args, nil, func(srv *authz.Server) error {
			keys, err := srv.Keys().Keys(ctx)
			if err != nil {
				return err
			}
			if *asJSON {
				return printJSON(e.stdout, keys)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KID\tALG\tSTATE\tACTIVATES AT\tRETIRED AT")
			for _, k := range keys {
				retired := "-"
				if k.RetiredAt != nil {
					retired = k.RetiredAt.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.KID, k.Alg, k.State, k.ActivatesAt.Format(time.RFC3339), retired)
			}
			return tw.Flush()
		})
	case "rotate":
		lead := o.fs.Duration("lead", authz.DefaultRotationLead,
			"how long the new key is published before it signs; keep it above the JWKS cache age (5m) and the replicas' reload interval (30s)")
		check := func() error {
			if *lead < 0 {
				return usageErr("--lead must not be negative")
			}
			if len(o.args) > 0 {
				return usageErr("unexpected argument %q", o.args[0])
			}
			return nil
		}
		return withServer(ctx, o, args, check, func(srv *authz.Server) error {
			kid, at, err := srv.Keys().Rotate(ctx, *lead)
			if err != nil {
				return err
			}
			if *asJSON {
				return printJSON(e.stdout, map[string]any{"kid": kid, "activates_at": at})
			}
			fmt.Fprintf(e.stdout, "new key %s is published now and signs from %s\n", kid, at.Format(time.RFC3339))
			return nil
		})
	}
	return usageErr("unknown keys command %q", sub)
}
