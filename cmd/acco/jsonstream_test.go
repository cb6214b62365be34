package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// streamTypes is the vocabulary of the --json stream of long commands.
var streamTypes = []string{"plan", "apply_start", "apply_progress", "apply_complete", "apply_errored", "diagnostic", "verify_step", "summary"}

// checkStream checks a --json stream of a long command: one JSON object
// per line, each with a type of the vocabulary; a plan object carries the
// plan document (format_version, changes, drift, summary); every summary
// names its operation; a failed command may end with its error document
// (error, exit_code). It returns the objects' types in order.
func checkStream(data []byte) ([]string, error) {
	var types []string
	dec := json.NewDecoder(bytes.NewReader(data))
	sawError := false
	for {
		var obj map[string]json.RawMessage
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return types, fmt.Errorf("object %d: not a JSON object: %w", len(types)+1, err)
		}
		if sawError {
			return types, errors.New("an object follows the error document")
		}
		var typ string
		if raw, ok := obj["type"]; ok {
			if err := json.Unmarshal(raw, &typ); err != nil {
				return types, fmt.Errorf("object %d: type is not a string", len(types)+1)
			}
		} else if _, ok := obj["error"]; ok {
			if _, ok := obj["exit_code"]; !ok {
				return types, fmt.Errorf("object %d: error document without exit_code", len(types)+1)
			}
			sawError = true
			types = append(types, "error")
			continue
		}
		if !slices.Contains(streamTypes, typ) {
			return types, fmt.Errorf("object %d: type %q is not of the stream's vocabulary", len(types)+1, typ)
		}
		switch typ {
		case "plan":
			var fv string
			if err := json.Unmarshal(obj["format_version"], &fv); err != nil || fv != "1" {
				return types, fmt.Errorf("object %d: plan without format_version \"1\"", len(types)+1)
			}
			for _, k := range []string{"env", "changes", "drift", "summary"} {
				if _, ok := obj[k]; !ok {
					return types, fmt.Errorf("object %d: plan without %s", len(types)+1, k)
				}
			}
		case "summary":
			if _, ok := obj["operation"]; !ok {
				return types, fmt.Errorf("object %d: summary without operation", len(types)+1)
			}
		}
		types = append(types, typ)
	}
	if !sawError {
		// Outside the error document, one object per line.
		for i, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
			if !json.Valid([]byte(line)) {
				return types, fmt.Errorf("line %d is not one JSON object", i+1)
			}
		}
	}
	return types, nil
}

// jsonstream is a test program: `jsonstream FILE` checks the --json stream
// in FILE (checkStream) and prints its objects' types, one line, with
// consecutive repeats folded ("apply_start*3").
func jsonstream() int {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: jsonstream FILE")
		return 2
	}
	data, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	types, err := checkStream(data)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var folded []string
	for i := 0; i < len(types); {
		j := i
		for j < len(types) && types[j] == types[i] {
			j++
		}
		if j-i > 1 {
			folded = append(folded, fmt.Sprintf("%s*%d", types[i], j-i))
		} else {
			folded = append(folded, types[i])
		}
		i = j
	}
	fmt.Println(strings.Join(folded, " "))
	return 0
}
