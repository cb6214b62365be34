package main

import "testing"

func TestEscapeURIValue(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/home/op/.acco/test/main-ca.pem", "/home/op/.acco/test/main-ca.pem"},
		{"/Users/Jane Doe/.acco/test/main-ca.pem", "/Users/Jane%20Doe/.acco/test/main-ca.pem"},
		{"/tmp/a&sslmode=disable", "/tmp/a%26sslmode%3Ddisable"},
		{"/tmp/a+b#c%d", "/tmp/a%2Bb%23c%25d"},
		{"/tmp/é", "/tmp/%C3%A9"},
	} {
		if got := escapeURIValue(tc.in); got != tc.want {
			t.Errorf("escapeURIValue(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSafeFileName(t *testing.T) {
	for in, want := range map[string]bool{
		"main": true, "test-eu": true, "db2": true,
		"": false, "..": false, ".main": false, "-x": false, "a/b": false, "Main": false, "a b": false,
	} {
		if got := safeFileName(in); got != want {
			t.Errorf("safeFileName(%q) = %v, want %v", in, got, want)
		}
	}
}
