package spec

// Warnings returns what the environment allows but its operator probably
// does not mean, positioned like Validate's problems; nil when there is
// nothing to say. acco validate and acco configure print them (on stderr,
// and in their JSON).
//
// PowerSync running without services.powersync.sync_rules serves the apps
// nothing: acco's default sync config holds only acco verify's own bucket.
func (e *Environment) Warnings() ErrorList {
	var out ErrorList
	if ps := e.Services.PowerSync; ps != nil && !e.Services.Offline && ps.SyncRules == "" {
		const path = "services.powersync.sync_rules"
		out = append(out, newError(e.pos.at(path), path,
			"not set: PowerSync will sync nothing to the apps (acco's default sync config holds only acco verify's own bucket); name the application's sync rules file from the backend's repository (bucket_definitions or streams), e.g. sync_rules: ../backend/sync-rules.yaml"))
	}
	return out
}
