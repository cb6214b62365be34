// Package ovhapi is the OVH API v1 half of acco's local cloud: an offline
// double of https://eu.api.ovh.com/1.0 that serves the Public Cloud project
// and Cloud Databases (PostgreSQL) endpoints that acco, go-ovh and the OVH
// Terraform provider use.
//
// What a client sees follows the OVH API v1 /cloud schema: paths, JSON field
// names, types and enums (cloud.project.database.Service, ServiceCreation,
// Availability, Capabilities, UserWithPasswordAndRoles, …), the status
// lifecycle (CREATING → READY after Config.CreateDelay, UPDATING after a PUT,
// DELETING → 404 after Config.DeleteDelay, all computed lazily from
// timestamps), passwords that are returned once and never stored, and OVH's
// error bodies ({"class":"Client::NotFound","message":…}, plus errorCode and
// httpCode for authentication failures) with an X-Ovh-Queryid header.
//
// Every call except GET /auth/time must carry go-ovh's application-key
// signature:
//
//	X-Ovh-Signature: "$1$" + hex(sha1(AS+"+"+CK+"+"+METHOD+"+"+URL+"+"+BODY+"+"+TS))
//
// where URL is the full URL as the client built it (scheme, the Host header,
// the request URI with its query string), BODY the raw request body and TS
// the X-Ovh-Timestamp header, which must be within Config.MaxClockSkew of
// Config.Now.
//
// The API keeps its state in memory; Snapshot and Restore move it to and from
// JSON, and Config.OnChange tells the owner when to save. Clusters are backed
// by a Backend (the pgserver package runs one real PostgreSQL server per
// cluster); without one, endpoints name a fake host.
package ovhapi
