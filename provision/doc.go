// Package provision decides and makes the cloud side of an environment:
// keypairs, security groups, instances (OpenStack) and managed PostgreSQL
// clusters with their users and logical databases (OVH Cloud Databases).
//
// The work is split the way Terraform splits it:
//
//   - Observe reads what is live, with one list call per resource type,
//     in parallel.
//   - PlanChanges is a pure function of (environment, state, observed cloud)
//     that returns a Plan: one Change per resource address with an Action
//     from one vocabulary (create, update, replace, delete, noop, read) and
//     a Reason, plus the Drift seen (changes made outside acco). Names of
//     flavors, images, networks and database offers are resolved during
//     planning, so a typo fails before anything is created.
//   - Apply consumes a Plan: in dependency order, with bounded parallelism,
//     writing an intent to state before every mutating call and the result
//     right after.
//
// Every resource kind follows one reconcile idiom (one file per kind): look
// it up by the ID recorded in state (NotFound means gone); else look for it
// by its deterministic name acco-<env>-<name> (and acco's tags or metadata)
// and adopt it; else create it and record its ID at once. Delete treats
// NotFound as done. A run killed at any point is therefore followed by one
// that adopts what the killed run created instead of duplicating it.
package provision
