package ovhapi

import (
	"fmt"
	"net/http"
)

// apiError is an error as OVH returns it. The body always carries class and
// message, which go-ovh decodes into ovh.APIError; authentication failures
// also carry the older errorCode and httpCode fields that OVH still sends
// for them.
type apiError struct {
	status    int
	class     string
	message   string
	errorCode string // only for authentication failures
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.status, e.class, e.message)
}

// body is the JSON document written for e.
func (e *apiError) body() map[string]string {
	b := map[string]string{"class": e.class, "message": e.message}
	if e.errorCode != "" {
		b["errorCode"] = e.errorCode
		b["httpCode"] = fmt.Sprintf("%d %s", e.status, http.StatusText(e.status))
	}
	return b
}

func errorf(status int, class, format string, args ...any) *apiError {
	return &apiError{status: status, class: class, message: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, "Client::BadRequest", format, args...)
}

func notFound(format string, args ...any) *apiError {
	return errorf(http.StatusNotFound, "Client::NotFound", format, args...)
}

func conflict(class, format string, args ...any) *apiError {
	if class == "" {
		class = "Client::Conflict"
	}
	return errorf(http.StatusConflict, class, format, args...)
}

func forbidden(format string, args ...any) *apiError {
	return errorf(http.StatusForbidden, "Client::Forbidden", format, args...)
}

func internalError(err error) *apiError {
	return errorf(http.StatusInternalServerError, "Server::InternalServerError", "Internal server error: %v", err)
}

// authError builds one of the authentication failures OVH answers with.
func authError(status int, errorCode, message string) *apiError {
	class := "Client::BadRequest"
	switch status {
	case http.StatusUnauthorized:
		class = "Client::Unauthorized"
	case http.StatusForbidden:
		class = "Client::Forbidden"
	}
	return &apiError{status: status, class: class, message: message, errorCode: errorCode}
}

func errNotAuthenticated() *apiError {
	return authError(http.StatusUnauthorized, "NOT_AUTHENTICATED", "You must login first")
}

func errInvalidKey() *apiError {
	return authError(http.StatusForbidden, "INVALID_KEY", "This application key is invalid")
}

func errInvalidCredential() *apiError {
	return authError(http.StatusForbidden, "INVALID_CREDENTIAL", "This credential does not exist")
}

func errQueryTimeOut() *apiError {
	return authError(http.StatusBadRequest, "QUERY_TIME_OUT", "Query out of time")
}

func errInvalidSignature() *apiError {
	return authError(http.StatusBadRequest, "INVALID_SIGNATURE", "Invalid signature")
}

// errInvalidURL is OVH's answer to a path it does not serve.
func errInvalidURL() *apiError {
	return notFound("Got an invalid (or empty) URL")
}
