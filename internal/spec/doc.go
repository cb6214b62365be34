// Package spec holds acco's environment model: the types of an environment's
// YAML, Load (defaults.yaml merged with <env>.yaml, strictly decoded) and
// Validate.
//
// # Files and merging
//
// An environments directory holds defaults.yaml (what every environment
// shares) and one <env>.yaml per environment (Names lists them). Load merges
// the environment's file over defaults.yaml at the YAML node level: mappings
// merge key by key, recursively; lists and single values replace; a null
// (~) in the environment's file removes the key defaults.yaml sets. Every
// value keeps the file, line and column it was written at.
//
// # Strict decoding
//
// An unknown key (with a "did you mean" suggestion or the list of allowed
// keys), a key written twice, a value of the wrong kind, an anchor or alias,
// a merge key (<<), a custom tag, a second document, a syntax error or an
// empty environment file is an error. Numbers and booleans are not accepted
// as quoted strings; "yes" and "on" are strings.
//
// # Values
//
// Every string (values, list items, map keys, and values read with ${VAR})
// is one line of valid UTF-8 without control characters: no tab, line
// break, escape, DEL, C1 character or Unicode line separator, since a value
// may land in a systemd unit, a configuration file or a command on the
// services host. Names, identifiers, image references, paths, addresses,
// topic filters and URLs are held to their grammar besides (see the schema);
// free text (descriptions, audiences, backend environment values) is quoted
// for the file it lands in.
//
// # Environment variables
//
// Only the keys that hold a secret or a per-operator value read the
// operator's environment, with ${VAR} (set and not empty) or
// ${VAR:-default} (default when unset or empty); $${ is a literal ${. These
// keys are tagged spec:"env": cloud, admin_cidrs[*], state.endpoint,
// keypairs.*.public_key, keypairs.*.public_key_file,
// services.{emqx,mosquitto}.listeners.*.tls.{cert_file,key_file,ca_file},
// services.powersync.sync_rules, services.powersync.tls.{cert_file,key_file},
// services.backend.artifact and services.backend.env.*. ${...} anywhere
// else, or an unset variable without a default, is an error. Local files
// named in the YAML are read later (plan, configure), never by Load or
// Validate, so `acco validate` passes on a fresh machine.
//
// # Errors
//
// Load and Validate return an ErrorList: one *Error per problem, each with
// File, Line, Column, the dotted key Path and a Message, printed one per line
// as file:line:column: key.path: message. Validate finds positions through an
// index of the merged tree, so its problems are positioned too.
//
// # Schema
//
// Keys, types and defaults. Load fills a default when the key is left out;
// keys with no default are required unless marked optional; (env) marks
// the keys that accept ${VAR}:
//
//	name                         string   required; must equal the file name (only in <env>.yaml)
//	project                      string   OVH serviceName = OpenStack project ID, 32 lowercase hex
//	cloud                        string   clouds.yaml entry (env)
//	region                       string   OpenStack region, upper case (GRA11)
//	admin_cidrs                  [string] operator CIDRs (env); rules refer to them as admin_cidrs
//	allow_prod_database_destroy  bool     default false; lets prod databases have protect: false
//	state:
//	  bucket                     string   S3 bucket name (dots need path_style: true)
//	  region                     string   lower case (gra)
//	  endpoint                   string   https URL (env); http only to localhost
//	  path_style                 bool     default false
//	  project                    string   optional; project holding the bucket
//	keypairs.NAME:               exactly one of:
//	  public_key                 string   authorized_keys line (env)
//	  public_key_file            string   local path ending in .pub (env)
//	security_groups.NAME:        NAME must not be "default"
//	  description                string   optional, <= 255
//	  rules:                     list of
//	    description              string   optional, <= 255
//	    protocol                 string   tcp | udp | icmp
//	    ports                    [port]   22 or "8000-8100"; required for tcp/udp, none for icmp
//	    from                     [string] CIDRs or admin_cidrs
//	instances.NAME:
//	  flavor                     string   e.g. d2-4, b3-8
//	  image                      string   e.g. Debian 12
//	  network                    string   default Ext-Net
//	  keypair                    string   a keypairs NAME
//	  security_groups            [string] security_groups NAMEs, at least one
//	  ssh_user                   string   default debian
//	  count                      int      optional, 1 to 100; N alike instances NAME-1 .. NAME-N
//	databases.NAME:
//	  engine                     string   default postgresql (the only one)
//	  version                    string   major version, >= 14; <= 17 with timescaledb
//	  plan                       string   essential | business | enterprise (db1-*) | production | advanced (b3-*)
//	  flavor                     string   db1-4, b3-8, ...
//	  region                     string   database region, upper case, no number (GRA)
//	  nodes                      int      essential 1, business 2, enterprise 3, production/advanced >= 2
//	  disk_gb                    int      0 = the flavor's included storage; not negative
//	  extensions                 [string] e.g. [timescaledb]
//	  logical_databases          [string] PostgreSQL identifiers, not defaultdb/postgres/template*
//	  users.USER:                USER a PostgreSQL identifier, not avnadmin/postgres/pg_*
//	    roles                    [string] only replication
//	    grants:                  list of
//	      database               string   one of logical_databases
//	      schema                 string   optional; schema privileges when tables is empty
//	      tables                 [string] optional; table, schema.table, *, schema.*
//	      privileges             [string] database: connect create temporary all;
//	                                      schema: usage create all; table: select insert
//	                                      update delete truncate references trigger all
//	  allow_from                 [string] instance.NAME or CIDRs; at least one; a counted NAME admits all of its instances
//	  protect                    bool     default false; prod requires true
//	  on_demand                  bool     default false; not with protect
//	  backup_time                string   optional, HH:MM[:SS] UTC
//	  maintenance_time           string   optional, HH:MM[:SS] UTC
//	  timeouts:
//	    create                   duration default 40m
//	    update                   duration default 40m
//	    delete                   duration default 20m
//	services:
//	  host                       string   an instances NAME, declared without count
//	  broker                     string   emqx | mosquitto; default emqx
//	  health_timeout             duration default 2m
//	  emqx:                      required when broker is emqx
//	    version                  string   >= 5.9 (e.g. "5.10.4")
//	    edition                  string   default enterprise (the only one)
//	    listeners.NAME:          at least one
//	      type                   string   tcp | ssl | ws | wss
//	      bind                   string   IP address, no zone; default 0.0.0.0
//	      port                   int
//	      tls:                   required for ssl and wss, refused otherwise
//	        cert_file            string   local PEM (env)
//	        key_file             string   local PEM (env)
//	        ca_file              string   optional; requires client certificates (env)
//	      public_plaintext       bool     default false; tcp and ws only: accepts, outside test,
//	                                      this plain-text listener open to the whole internet
//	    dashboard:
//	      bind                   string   default 127.0.0.1
//	      port                   int      default 18083
//	    allow_anonymous          bool     default false; never true in prod
//	    device_auth:
//	      backend                string   built_in_database | postgresql; default built_in_database
//	      user_id_type           string   username | clientid; default username
//	      password_hash          string   bcrypt | pbkdf2 | sha256; default bcrypt
//	      acl_no_match           string   deny | allow; default deny
//	      postgres               ref      required when backend is postgresql
//	    positions:
//	      topic                  string   MQTT topic filter of letters, digits, . _ - and + #, e.g. trackers/+/position
//	      postgres               ref      user needs insert on table
//	      table                  string   table or schema.table (the hypertable)
//	      latest_table           string   optional; user needs insert and update
//	    apt_key_fingerprint      string   optional; pins EMQX's packagecloud apt key (40 hex); configure refuses the key without it
//	  mosquitto:                 required when broker is mosquitto
//	    listeners.NAME           as for emqx
//	    allow_anonymous          bool     default false; never true in prod
//	  powersync:
//	    image                    string   default journeyapps/powersync-service
//	    tag                      string   pinned release, not latest/next
//	    port                     int      default 8080
//	    source                   ref      user needs the replication role and select on tables
//	    storage                  ref      user needs create on its database
//	    publication              string   default powersync (the only accepted name)
//	    tables                   [string] explicit list; not the positions hypertable
//	    sslmode                  string   verify-full | verify-ca | disable; default verify-full
//	    client_auth:             optional
//	      jwks_uri               string   http(s) URL
//	      audience               [string]
//	    sync_rules               string   optional; the application's sync config, a local .yaml/.yml
//	                                      (bucket_definitions or streams) read when configuring;
//	                                      acco adds its bucket acco_verify; unset: the apps get
//	                                      nothing, and validate warns (env)
//	    tls:                     optional; nginx (Debian) serves PowerSync over TLS on port
//	      port                   int      default 443
//	      cert_file              string   local PEM (env)
//	      key_file               string   local PEM (env)
//	    public_plaintext         bool     default false; accepts, outside test, port (plain
//	                                      HTTP) open to the whole internet
//	  backend:
//	    artifact                 string   local .tar.gz or .tgz (env)
//	    entrypoint               string   .js/.mjs/.cjs path inside the artifact ([A-Za-z0-9._@+-] between slashes, no ..)
//	    node_version             int      even, >= 20
//	    bind                     string   default 127.0.0.1
//	    port                     int      default 3000
//	    postgres                 ref
//	    env                      map      NAME: value (values env); not HOST, PORT, DATABASE_URL, MQTT_URL
//	    install_scripts          bool     default false: npm ci --ignore-scripts; true: npm ci runs the scripts as the service user
//
// A ref is {cluster, database, user}: a databases NAME, one of its
// logical_databases and one of its users. Ports are 1 to 65535 and no two
// services of the host share one (22, 4370 and 5370 are taken). Every
// database a service uses must admit instance.<host> in allow_from, and a
// security group of the host must admit tcp/22. Outside the test
// environment, a plain-text listener (an MQTT listener of type tcp or ws not
// bound to a loopback address, or PowerSync's port, which serves plain HTTP)
// that a rule of the host's security groups opens to 0.0.0.0/0 or ::/0 is
// an error naming the listener and the rule, unless the listener sets
// public_plaintext: true. Resource names are lowercase
// letters, digits and dashes (at most 32; environment names at most 20).
//
// # Alike instances (count)
//
// An instances entry with count: N (2 to MaxCount) stands for N instances
// with the entry's settings, named NAME-1 to NAME-N (count: 1, or no count,
// is one instance named NAME). Load expands the entry, so a loaded
// Environment, and every plan, graph and state, holds N ordinary instances
// (instance.NAME-1 ...); their problems point at the entry's lines. The
// members' names must fit the naming rule (NAME-N at most 32 characters) and
// no other entry may be named like a member. In a database's allow_from,
// instance.NAME of a counted entry admits all of its instances, and
// instance.NAME-2 one of them. The services run on one instance, so
// services.host names an entry without count; acco configure sets up only
// that host, and provisions the other instances as the YAML describes them.
//
// Resource addresses are KIND.NAME: keypair.NAME, security_group.NAME,
// instance.NAME, database.NAME, database_db.CLUSTER.NAME and
// database_user.CLUSTER.NAME (see Address and Environment.Addresses).
package spec
