package provision_test

import (
	"net/http"

	"github.com/accoreboot/acco/provision/httpretry"
	"github.com/accoreboot/acco/state"
)

func newClient(t *httpretry.Transport) *http.Client { return &http.Client{Transport: t} }

func stateStore(dir string) *state.Store { return state.NewStore(state.NewDirBlob(dir)) }
