package main

import (
	"fmt"
	"net/url"
	"os"
	"strings"
)

// nosecrets is a test program: `nosecrets STATE FILE...` unseals every
// secret of the state document STATE (as acco state pull prints it) with
// $ACCO_STATE_KEY and fails when one of them, or its URL-escaped form,
// appears in any FILE. It fails too when STATE holds no secret, so that a
// script cannot pass by checking nothing.
func nosecrets() int {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: nosecrets STATE FILE...")
		return 2
	}
	st, sealer, err := readSealedState(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	secrets := map[string]string{} // value -> where it belongs
	for _, r := range st.Resources {
		for k, sealed := range r.Secrets {
			v, err := sealer.Open(sealed, r.Address+"/"+k)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			for _, form := range []string{v, url.QueryEscape(v), url.PathEscape(v)} {
				secrets[form] = r.Address + "/" + k
			}
		}
	}
	if len(secrets) == 0 {
		fmt.Fprintln(os.Stderr, "nosecrets: the state holds no secret")
		return 1
	}
	leaks := 0
	for _, f := range os.Args[2:] {
		b, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		for v, where := range secrets {
			if strings.Contains(string(b), v) {
				fmt.Fprintf(os.Stderr, "nosecrets: %s shows the secret %s\n", f, where)
				leaks++
			}
		}
	}
	if leaks > 0 {
		return 1
	}
	fmt.Printf("no secret of %d in %d files\n", len(secrets), len(os.Args)-2)
	return 0
}
