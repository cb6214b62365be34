package main

import (
	"fmt"
	"os"
)

// credentialsFile is the git-ignored file the Makefile sources.
const credentialsFile = "credentials.sh"

// warnCredentialsFile warns when credentials.sh in the working directory
// can be read by group or others: it holds the OVH and S3 secrets.
func (a *app) warnCredentialsFile() {
	path := credentialsFile
	if v := a.getenv("ACCO_CREDENTIALS_FILE"); v != "" {
		path = v
	}
	fi, err := os.Stat(path)
	if err != nil {
		return
	}
	if mode := fi.Mode().Perm(); mode&0o077 != 0 {
		fmt.Fprintf(a.err, "Warning: %s is readable by group or others (mode %04o); it holds secrets: run chmod 600 %s\n", path, mode, path)
	}
}
