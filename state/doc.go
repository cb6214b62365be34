// Package state stores acco's per-environment state and locks in a small
// object store (an S3 bucket, or a directory for local use).
//
// # Layout
//
// One store holds every environment. For environment ENV the state is the
// object ENV/state.json and the lock is ENV/lock.json. An S3 bucket created
// by [S3Blob.EnsureBucket] also holds the marker .acco-bucket.json and has
// versioning on, so every state written can be recovered.
//
// The archives of stopped on-demand databases live beside the state: the
// sealed dump of each logical database at [DumpKey]
// (ENV/dumps/CLUSTER/STAMP/DB.dump.sealed) and the sealed [Manifest] of
// the archive at [ManifestKey] (ENV/dumps/CLUSTER/STAMP/manifest.json.sealed),
// written and read as files through [FileStore] and sealed in chunks by
// [Sealer.SealFile], bound to the environment and the object key but not
// to the state lineage.
//
// # Contract
//
//   - A [State] is a JSON envelope with a format version, a lineage (a UUID
//     fixed when the environment's state is first created) and a serial that
//     grows by one at every write. [Decode] refuses a format version newer
//     than [FormatVersion], so an old acco never rewrites state it does not
//     understand.
//   - [Store.Write] is a compare-and-swap: it writes only if the stored state
//     still has the ETag the caller read (or, for a first write, only if
//     there is none). It never goes back in serial, never crosses lineages
//     and never replaces a newer format. Of two writers that read the same
//     ETag exactly one wins; the other gets [ErrConflict].
//   - [Locker] gives lease locks: a lock object written only if absent, with
//     an expiry that its holder pushes forward while it works
//     ([Lease.KeepAlive]). A lock whose lease has run out may be taken over.
//     The lock body carries a random owner token, never shown, so that a
//     write whose answer was lost and which the client retried (the retry
//     then fails its precondition) is recognised as the caller's own.
//   - Secrets kept in state are sealed with a [Sealer] (AES-256-GCM under a
//     key of 32 random bytes given by the operator) and never stored in
//     clear text. A sealed value is bound to its environment, the state's
//     lineage and its address ([Sealer.For]).
//
// # Backends
//
// Both backends implement [Blob], a tiny object store with conditional
// writes. [S3Blob] relies on the server's If-Match / If-None-Match support
// (OVH Object Storage documents both for PutObject, and If-Match for
// DeleteObject); [S3Blob.CheckConditionalWrites] checks that a bucket
// honours them, and acco bootstrap and acco init refuse one that does not. [DirBlob] makes its conditional writes atomic with an
// exclusive flock held during check and write, so it is safe for several
// processes on one machine (Unix only), not for a shared network file
// system.
//
// Times in locks are compared with the local clock: machines that share a
// store must have roughly synchronised clocks (NTP), or leases expire early
// or late by the skew.
package state
