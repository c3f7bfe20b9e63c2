"""What the manifest cannot say in YAML, one module per concern; the manifest names each class by its full path.

    config       NormalizeConfigTransformation: the user's config, validated and normalized once per sync
    state        every state shape read or written, and SyncPlan: what the given state asks of this sync
    sync         what one sync's components share: the rate budget, the key check, warnings given once
    budget       OrgBudget: the sync's share of the org's rate limit, read from the responses' headers
    auth         KustomerAuthenticator: signs requests, waits for the budget, refuses redirects elsewhere
    errors       KustomerErrorHandler, KustomerBackoffStrategy: a rejected key, a missing role, faults
    records      extractors (JSON:API rows, CSAT rows, `included`, attribute metadata), the cursor-bounds filter and
                 the declared-columns normalization of records
    pagination   NextLinkPaginationStrategy: `links.next`, on the API host only
    auxiliary    OptionalSchemaLoader, BestEffortRetriever: auxiliary reads never fail a core stream
    windows      WindowRetriever: a window read whole moves the stream's state to its end; AuditLogWindowRetriever
    lists        ListWindowRetriever, ListReader: lists by page number, fast, exact, checkpointed
    search       SearchWindowRetriever, SearchReader: search, exact at its limits, checkpointed
    audit_log    AuditLogDeletes: the audit log's deletes, for deletion markers and page shifts
    times        ConversationTimesRetriever: handle times by search, by conversation where search cannot serve
    substreams   ConversationPartitionRouter, ConversationSubstreamRetriever: streams read per conversation;
                 MetadataResourcesPartitionRouter: a partition per resource with custom attributes

Imports run one way: the retrievers (windows, lists, search, audit_log, times, substreams) use state, sync, errors,
records and pagination, never the reverse. docs/architecture.md draws how a read flows through them."""
