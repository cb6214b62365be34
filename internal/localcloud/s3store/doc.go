// Package s3store is the persistent S3 backend of the local cloud: an
// in-memory gofakes3 backend (versioning and conditional writes included)
// whose every successful mutation is appended to a journal on disk and
// replayed on the next start. Replay runs the same operations with the same
// clock readings and the same version seed, so objects, versions, version
// IDs and timestamps come back exactly as they were.
//
// RequireSignature puts the check of AWS Signature Version 4 in front of
// the S3 server, as OVH's S3 checks it.
package s3store
