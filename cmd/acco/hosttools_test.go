package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/ssh"

	"github.com/accoreboot/acco/configure"
	"github.com/accoreboot/acco/state"
)

// Test commands of the end-to-end scripts that act on a local-cloud
// environment behind acco's back, as an operator (or an incident) would.

// readSealedState reads a state file pulled with acco state pull, and the
// sealer of ACCO_STATE_KEY.
func readSealedState(path string) (*state.State, *state.Sealer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	st, err := state.Decode(data)
	if err != nil {
		return nil, nil, err
	}
	sealer, err := state.NewSealer(os.Getenv("ACCO_STATE_KEY"))
	return st, sealer.For(st.Env, st.Lineage), err
}

// pgsql STATE SQL runs SQL in the database acco of the local cloud's
// cluster main as its admin (the password unsealed from state; the VMs'
// 10.0.2.2 is this machine's 127.0.0.1) and prints each row's columns
// separated by tabs.
func pgsql() int {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: pgsql STATE SQL")
		return 2
	}
	st, sealer, err := readSealedState(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	db, ok := st.Resource("database.main")
	admin, ok2 := st.Resource("database_admin.main")
	if !ok || !ok2 {
		fmt.Fprintln(os.Stderr, "pgsql: no database.main or database_admin.main in state")
		return 1
	}
	var pw string
	for k, sealed := range admin.Secrets {
		if pw, err = sealer.Open(sealed, admin.Address+"/"+k); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	host, _ := db.Attributes["host"].(string)
	if host == "10.0.2.2" {
		host = "127.0.0.1"
	}
	port := attrNumber(db.Attributes["port"])
	u := url.URL{Scheme: "postgres", User: url.UserPassword("avnadmin", pw), Host: net.JoinHostPort(host, strconv.Itoa(port)), Path: "/acco", RawQuery: "sslmode=require&connect_timeout=10"}
	cfg, err := pgx.ParseConfig(u.String())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cfg.TLSConfig = &tls.Config{InsecureSkipVerify: true}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer rows.Close()
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		var cols []string
		for _, v := range vals {
			cols = append(cols, fmt.Sprint(v))
		}
		fmt.Println(strings.Join(cols, "\t"))
	}
	if err := rows.Err(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// hostrun STATE KEY COMMAND runs COMMAND as root on the services host
// app over SSH (its host key as pinned in state) with the private KEY.
func hostrun() int {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: hostrun STATE KEY COMMAND")
		return 2
	}
	data, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	st, err := state.Decode(data)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	pem, err := os.ReadFile(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	h, ok := st.Hosts["app"]
	if !ok {
		fmt.Fprintln(os.Stderr, "hostrun: no pinned host app in state")
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn := &configure.SSHConnector{Signer: signer, Keys: &configure.StateKeys{State: st}}
	r, err := conn.Connect(ctx, configure.Host{Name: "app", Address: h.Address, User: "debian"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer r.Close()
	out, err := r.Run(ctx, os.Args[3], nil)
	os.Stdout.Write(out)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func attrNumber(v any) int {
	switch n := v.(type) {
	case float64:
		return int(n)
	case int:
		return n
	case fmt.Stringer:
		i, _ := strconv.Atoi(n.String())
		return i
	}
	return 0
}
