package state

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
)

// The variables from which the AWS SDK reads the S3 credentials first.
const (
	accessKeyVar = "AWS_ACCESS_KEY_ID"
	secretKeyVar = "AWS_SECRET_ACCESS_KEY"
)

// isCredentialCode reports whether an S3 error code says that the
// credentials or the signature made with them were refused.
func isCredentialCode(code string) bool {
	switch code {
	case "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "RequestTimeTooSkewed", "InvalidToken", "ExpiredToken":
		return true
	}
	return false
}

// credentialError says which credential the S3 service refused (code, from
// an answer err) and what to do: it names the access key and where it was
// read from (the variables AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or
// a shared credentials file), the bucket and the endpoint. It never shows
// the secret. It wraps ErrCredentials and err.
func (b *S3Blob) credentialError(ctx context.Context, code string, err error) error {
	endpoint := aws.ToString(b.client.Options().BaseEndpoint)
	if endpoint == "" {
		endpoint = "AWS S3 (region " + b.region + ")"
	}
	// The credentials were retrieved to sign the request: this reads the
	// SDK's cache.
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var creds aws.Credentials
	if p := b.client.Options().Credentials; p != nil {
		creds, _ = p.Retrieve(rctx)
	}
	keyVar, secretVar, from := credentialSource(creds.Source)
	key := creds.AccessKeyID
	if key == "" {
		key = "(none)"
	}
	if code == "" {
		code = "403 Forbidden"
	}
	var what string
	switch code {
	case "InvalidAccessKeyId":
		what = fmt.Sprintf("the S3 service at %s does not know the access key %s (%s) %s: set %s to an S3 access key of the project that owns bucket %s (OVH: Public Cloud > Users & Roles > the user's S3 credentials), and %s to its secret",
			endpoint, key, code, from, keyVar, b.bucket, secretVar)
	case "SignatureDoesNotMatch":
		what = fmt.Sprintf("the S3 service at %s refused the signature made with the secret of access key %s (%s): %s is not the secret of that key; set it to the secret shown with access key %s (OVH: Public Cloud > Users & Roles > the user's S3 credentials), for bucket %s",
			endpoint, key, code, secretVar, key, b.bucket)
	case "RequestTimeTooSkewed":
		what = fmt.Sprintf("the S3 service at %s refused the request's time (%s): the clock of this machine is off by more than 15 minutes; set it right (timedatectl set-ntp true), then run again",
			endpoint, code)
	case "InvalidToken", "ExpiredToken":
		what = fmt.Sprintf("the S3 service at %s refused the session token of access key %s (%s) %s: unset AWS_SESSION_TOKEN, or renew the temporary credentials",
			endpoint, key, code, from)
	default:
		what = fmt.Sprintf("the S3 service at %s refused access to bucket %s for access key %s (%s) %s: give that key's user the right to use the bucket (OVH: its role, or the bucket's policy), or set %s and %s to an S3 key and secret of the project that owns the bucket",
			endpoint, b.bucket, key, code, from, keyVar, secretVar)
	}
	return fmt.Errorf("%s: %w (%w)", what, ErrCredentials, err)
}

// credentialSource names, from the SDK's credential source, the access
// key's and the secret's place and where they came from.
func credentialSource(source string) (keyVar, secretVar, from string) {
	switch {
	case source == config.CredentialsSourceName:
		return accessKeyVar, secretKeyVar, "(read from " + accessKeyVar + " and " + secretKeyVar + ")"
	case strings.HasPrefix(source, "SharedConfigCredentials: "):
		file := strings.TrimPrefix(source, "SharedConfigCredentials: ")
		return "aws_access_key_id in " + file, "aws_secret_access_key in " + file, "(read from " + file + ", since " + accessKeyVar + " is not set)"
	case source == "":
		return accessKeyVar, secretKeyVar, ""
	}
	return accessKeyVar, secretKeyVar, "(from " + source + ")"
}
