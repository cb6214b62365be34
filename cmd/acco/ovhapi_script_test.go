package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/ovh/go-ovh/ovh"
)

// ovhapi is a test program that calls the OVH API as the control panel or
// a script would, not through acco: a signed request with go-ovh, the
// credentials from OVH_* (acco local env exports the local cloud's).
//
//	ovhapi METHOD PATH [BODY] [FIELD]
//
// It prints the answer, or with FIELD only that field of it (an object's
// key, e.g. id).
func ovhapi() int {
	if err := runOvhapi(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "ovhapi:", err)
		return 1
	}
	return 0
}

func runOvhapi(ctx context.Context, args []string) error {
	if len(args) < 2 || len(args) > 4 {
		return errors.New("usage: ovhapi METHOD PATH [BODY] [FIELD]")
	}
	cl, err := ovh.NewClient(os.Getenv("OVH_ENDPOINT"), os.Getenv("OVH_APPLICATION_KEY"), os.Getenv("OVH_APPLICATION_SECRET"), os.Getenv("OVH_CONSUMER_KEY"))
	if err != nil {
		return err
	}
	var body any
	if len(args) >= 3 && args[2] != "" {
		if err := json.Unmarshal([]byte(args[2]), &body); err != nil {
			return fmt.Errorf("body: %w", err)
		}
	}
	var out any
	if err := cl.CallAPIWithContext(ctx, args[0], args[1], body, &out, true); err != nil {
		return err
	}
	if len(args) == 4 {
		obj, ok := out.(map[string]any)
		if !ok {
			return fmt.Errorf("the answer is not an object: %v", out)
		}
		fmt.Println(obj[args[3]])
		return nil
	}
	data, err := json.Marshal(out)
	if err != nil {
		return err
	}
	fmt.Println(string(data))
	return nil
}
