namespace FastIngest.Configuration;

/// <summary>
/// Everything under the <c>FastIngest</c> configuration section (appsettings.json, environment
/// <c>FastIngest__Key</c>, command line <c>--FastIngest:Key=value</c>). Checked by <see cref="OptionsLoader"/>;
/// a bad value stops start-up with one line naming its key.
/// </summary>
public sealed class FastIngestOptions
{
    /// <summary>The configuration section name.</summary>
    public const string SectionName = "FastIngest";

    /// <summary>
    /// <c>FastIngest:AdminToken</c>: bearer token of the admin API (<c>/admin/...</c>: the dead-letter queue); while it
    /// is not set the admin API answers 404. At least 16 characters.
    /// </summary>
    public string? AdminToken { get; set; }

    /// <summary>
    /// <c>FastIngest:AdminTokens:{n}</c>: more values accepted like <see cref="AdminToken"/> (rotation: add the new one,
    /// move the operators' tools, remove the old one). Each at least 16 characters.
    /// </summary>
    public List<string> AdminTokens { get; set; } = [];

    /// <summary>Every accepted admin token: <see cref="AdminToken"/> (when set) first, then <see cref="AdminTokens"/>.</summary>
    public IReadOnlyList<string> AdminTokenValues => Internal.SecretSet.Values(AdminToken, AdminTokens);

    /// <summary>
    /// <c>FastIngest:ReloadOnChange</c>: apply a configuration source's own change (an edited <c>appsettings.json</c>)
    /// as <c>POST /admin/reload</c> would (tenants and secrets only; see <see cref="Hosting.ConfigReload"/>). Default true.
    /// </summary>
    public bool ReloadOnChange { get; set; } = true;

    /// <summary><c>FastIngest:DataDir</c>: where the event log, dedupe store and file output live. Default <c>./data</c>.</summary>
    public string DataDir { get; set; } = "./data";

    /// <summary><c>FastIngest:MaxBodyBytes</c>: largest webhook body accepted, in bytes; larger gets 413. Default 4 MiB.</summary>
    public int MaxBodyBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>
    /// <c>FastIngest:MaxInFlightBodyBytes</c>: most bytes of webhook bodies held in memory at once, over all requests
    /// (each counts the buffer it has grown to for the bytes actually received, not what it declared); past it, 503
    /// with <c>Retry-After</c>. Default 256 MiB; at least <see cref="MaxBodyBytes"/>.
    /// </summary>
    public long MaxInFlightBodyBytes { get; set; } = 256L * 1024 * 1024;

    /// <summary>
    /// <c>FastIngest:MaxConnections</c>: most client connections open at once (Kestrel's connection limit); a
    /// connection past it gets 503 with <c>Retry-After</c> and is closed. Default 10,000; 0 for no limit.
    /// </summary>
    public int MaxConnections { get; set; } = 10_000;

    /// <summary>
    /// <c>FastIngest:MaxEventsPerPayload</c>: most events accepted in one webhook payload; an authentic payload with
    /// more is quarantined (200, counted, replayable). Default 10,000 (Meta batches up to 1,000 updates per POST).
    /// </summary>
    public int MaxEventsPerPayload { get; set; } = Ingest.IngestPipeline.DefaultMaxEvents;

    /// <summary><c>FastIngest:DedupeTtl</c>: how long an event id counts as seen. Default 7 days, Meta's whole retry horizon.</summary>
    public TimeSpan DedupeTtl { get; set; } = TimeSpan.FromDays(7);

    /// <summary><c>FastIngest:CheckpointInterval</c>: how often the dedupe store is checkpointed and the log truncated. Default 60 s.</summary>
    public TimeSpan CheckpointInterval { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// <c>FastIngest:DeliveryStateTtl</c>: how long a message's delivery state (<c>GET /v1/messages/{wamid}</c>) is
    /// kept after its last status webhook. Default 30 days.
    /// </summary>
    public TimeSpan DeliveryStateTtl { get; set; } = TimeSpan.FromDays(30);

    /// <summary>
    /// <c>FastIngest:ShutdownTimeout</c>: from SIGTERM to exit. Kestrel stops accepting and finishes requests in
    /// flight, deliveries in progress get what is left of it minus a reserve (a quarter, at most 1 s) for the final
    /// commit and checkpoint, then anything still being sent is cut (it stays unacked and goes out again after the
    /// next start). Default 30 s.
    /// </summary>
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary><c>FastIngest:Storage</c>: memory given to the log and the dedupe store.</summary>
    public StorageOptions Storage { get; set; } = new();

    /// <summary><c>FastIngest:Outbound</c>: the send tier (<c>POST /graph/{version}/{phone_number_id}/messages</c>) shared by all tenants.</summary>
    public OutboundOptions Outbound { get; set; } = new();

    /// <summary><c>FastIngest:Tenants:{i}</c>: one entry per WhatsApp app (tenant) whose webhooks this server receives.</summary>
    public List<TenantOptions> Tenants { get; set; } = [];
}

/// <summary><c>FastIngest:Storage</c>: memory budgets, in bytes.</summary>
public sealed class StorageOptions
{
    /// <summary>
    /// <c>MaxDiskBytes</c>: disk quota of <c>DataDir</c>, in bytes; 0 for none. Past it, webhooks get 503 with
    /// <c>Retry-After</c> (Meta retries them; nothing accepted is dropped) and <c>/readyz</c> fails, until delivery and
    /// truncation bring it back under. Sampled every second. Default 0.
    /// </summary>
    public long MaxDiskBytes { get; set; }

    /// <summary>
    /// <c>StallThreshold</c>: how long a commit of the event log may wait for the disk (a frozen file system, a
    /// dying disk) before <c>/readyz</c> fails and new webhooks get 503 with <c>Retry-After</c>; a write the disk
    /// refuses (full, read-only) does so at once. Between 00:00:00.1 and 00:10:00; default 00:00:02 (a commit takes
    /// well under a millisecond on a healthy disk).
    /// </summary>
    public TimeSpan StallThreshold { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary><c>LogMemoryBytes</c>: in-memory tail of the event log. Default 64 MiB (at least 4 pages of MaxBodyBytes).</summary>
    public long LogMemoryBytes { get; set; } = 64L << 20;

    /// <summary><c>DedupeIndexBytes</c>: hash index of the dedupe store, a power of two. Default 32 MiB (about 3.5 million keys before chains grow).</summary>
    public long DedupeIndexBytes { get; set; } = 32L << 20;

    /// <summary><c>DedupeMemoryBytes</c>: in-memory part of the dedupe store's log (48 bytes a key). Default 64 MiB.</summary>
    public long DedupeMemoryBytes { get; set; } = 64L << 20;

    /// <summary><c>StateIndexBytes</c>: hash index of the delivery-state store (power of two; ~16 bytes per message within <c>DeliveryStateTtl</c>). Default 16 MiB.</summary>
    public long StateIndexBytes { get; set; } = 16L << 20;

    /// <summary><c>StateMemoryBytes</c>: in-memory part of the delivery-state store (about 144 bytes a message); older states are read from disk. Default 32 MiB.</summary>
    public long StateMemoryBytes { get; set; } = 32L << 20;

    /// <summary><c>WindowIndexBytes</c>: hash index of the customer-window store (power of two; ~16 bytes per customer who wrote in the last 24 h). Default 8 MiB.</summary>
    public long WindowIndexBytes { get; set; } = 8L << 20;

    /// <summary><c>WindowMemoryBytes</c>: in-memory part of the customer-window store (40 bytes a customer). Default 16 MiB.</summary>
    public long WindowMemoryBytes { get; set; } = 16L << 20;

    /// <summary>
    /// <c>SendIndexBytes</c>: hash index of the send index (<c>DataDir/outbound-index/</c>: three keys per send remembered
    /// for <c>Outbound:Retention</c>, by id, idempotency key and wamid; power of two; ~16 bytes a key). Default 8 MiB.
    /// </summary>
    public long SendIndexBytes { get; set; } = 8L << 20;

    /// <summary><c>SendMemoryBytes</c>: in-memory part of the send index (about 56 bytes a key); older keys are read from disk. Default 16 MiB.</summary>
    public long SendMemoryBytes { get; set; } = 16L << 20;
}

/// <summary>How a tenant's webhooks are authenticated (<c>Tenants:{i}:Inbound:Auth</c>).</summary>
public enum InboundAuth
{
    /// <summary><c>X-Hub-Signature-256</c> under the app secret (Meta's own webhooks); the <c>hub.challenge</c> handshake answers GET.</summary>
    MetaSignature,

    /// <summary>
    /// A secret header that a Business Solution Provider is configured to send (360dialog's webhook settings take
    /// custom headers): <c>Inbound:HeaderName</c> must carry one of <c>Inbound:HeaderValue</c> / <c>HeaderValues:{n}</c>,
    /// compared in fixed time. There is no handshake: GET answers 404.
    /// </summary>
    Header,
}

/// <summary><c>FastIngest:Tenants:{i}:Inbound</c>: the authentication of the tenant's webhooks.</summary>
public sealed class InboundOptions
{
    /// <summary><c>Auth</c>: <c>MetaSignature</c> (default) or <c>Header</c> (a string, so a bad value is reported with its key).</summary>
    public string Auth { get; set; } = nameof(InboundAuth.MetaSignature);

    /// <summary><c>HeaderName</c>: the header a BSP sends (Header mode), e.g. <c>X-Partner-Auth</c>.</summary>
    public string? HeaderName { get; set; }

    /// <summary><c>HeaderValue</c>: the secret value of <see cref="HeaderName"/> (at least 16 characters).</summary>
    public string? HeaderValue { get; set; }

    /// <summary><c>HeaderValues:{n}</c>: more accepted values, for a rotation (each at least 16 characters).</summary>
    public List<string> HeaderValues { get; set; } = [];
}

/// <summary><c>FastIngest:Tenants:{i}</c>: one WhatsApp app whose webhooks arrive at <c>/webhooks/{Id}</c>.</summary>
public sealed class TenantOptions
{
    /// <summary><c>Id</c>: the path segment of the webhook URL; letters, digits, '-', '_' and '.', at most 64.</summary>
    public string Id { get; set; } = "";

    /// <summary><c>AppSecret</c>: the Meta app secret that keys <c>X-Hub-Signature-256</c>.</summary>
    public string AppSecret { get; set; } = "";

    /// <summary>
    /// <c>AppSecrets:{n}</c>: more app secrets accepted like <see cref="AppSecret"/>, for a rotation without a window of
    /// 401s: a webhook valid under any of them is accepted, and <c>fastingest_signature_key_used_total{tenant,key_index}</c>
    /// counts which one matched (index 0 is <see cref="AppSecret"/> when it is set, then these in order), so that the
    /// old secret can be removed once nothing matches it any more.
    /// </summary>
    public List<string> AppSecrets { get; set; } = [];

    /// <summary><c>Inbound</c>: how this tenant's webhooks prove they are authentic (default: Meta's signature).</summary>
    public InboundOptions Inbound { get; set; } = new();

    /// <summary><c>VerifyToken</c>: the <c>hub.verify_token</c> set in the app's webhook configuration.</summary>
    public string VerifyToken { get; set; } = "";

    /// <summary>
    /// <c>Forward</c>: where this tenant's events go when <see cref="Destinations"/> is empty (one destination named
    /// <c>forward</c>: a Webhook with <c>Url</c>, else a File), and the delivery defaults of every destination.
    /// </summary>
    public ForwardOptions Forward { get; set; } = new();

    /// <summary>
    /// <c>Destinations</c>: the places this tenant's events go, each with its own position, acks, retries, breaker,
    /// dead letters and metrics. Empty: the one destination <see cref="Forward"/> describes.
    /// </summary>
    public List<DestinationOptions> Destinations { get; set; } = [];

    /// <summary>
    /// <c>InboundSilence</c>: no inbound message (statuses do not count) for longer than this, inside
    /// <see cref="ActiveHours"/>, fails <c>/readyz</c>, sets <c>fastingest_inbound_silent</c> and logs a warning:
    /// the silent outage. 0 (default) turns the check off.
    /// </summary>
    public TimeSpan InboundSilence { get; set; }

    /// <summary><c>ActiveHours</c>: when silence counts, <c>HH:mm-HH:mm</c> in <see cref="TimeZone"/> (may wrap midnight); empty: all day.</summary>
    public string? ActiveHours { get; set; }

    /// <summary><c>TimeZone</c>: time zone of <see cref="ActiveHours"/> (IANA id, e.g. <c>America/Sao_Paulo</c>). Default <c>UTC</c>.</summary>
    public string TimeZone { get; set; } = "UTC";

    /// <summary><c>Outbound</c>: this tenant's sends through FastIngest (off while it lists no phone number).</summary>
    public TenantOutboundOptions Outbound { get; set; } = new();
}

/// <summary><c>FastIngest:Tenants:{i}:Forward</c>: delivery of a tenant's events to its bot.</summary>
public sealed class ForwardOptions
{
    /// <summary><c>Url</c>: the bot's webhook (absolute http or https). Empty: events go to <c>DataDir/out/{tenant}.jsonl</c>.</summary>
    public string? Url { get; set; }

    /// <summary><c>Secret</c>: key of the <c>X-Hub-Signature-256</c> on forwarded requests; required with <see cref="Url"/> (or <see cref="Secrets"/>).</summary>
    public string? Secret { get; set; }

    /// <summary>
    /// <c>Secrets:{n}</c>: the forward secret as a list, for a rotation: requests are signed with the first value
    /// (<see cref="Secret"/> when set, else <c>Secrets:0</c>); the others are kept in the configuration only so that
    /// the operator's file says which keys the bot still accepts (README, Rotating secrets). At most 8.
    /// </summary>
    public List<string> Secrets { get; set; } = [];

    /// <summary>
    /// <c>SecretKeyId</c>: the value of <c>X-FastIngest-Signature-Key</c> on signed requests, naming the key that
    /// signed (1-64 of letters, digits, '.', '_', '-'). Default: <c>sha256:</c> and the first 8 hex digits of SHA-256
    /// over the signing secret, which tells keys apart without revealing them. Never the secret itself.
    /// </summary>
    public string? SecretKeyId { get; set; }

    /// <summary>
    /// <c>Concurrency</c>: requests in flight to the bot at once. Events of one customer (wa_id) always go in order
    /// on one lane; lanes are independent. Default 4.
    /// </summary>
    public int Concurrency { get; set; } = 4;

    /// <summary><c>QueueCapacity</c>: events buffered per lane before the dispatcher waits (backpressure). Default 1024.</summary>
    public int QueueCapacity { get; set; } = 1024;

    /// <summary><c>Timeout</c>: per request to the bot. Default 10 s.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary><c>InitialBackoff</c>: first retry delay after a failure. Default 500 ms; doubles each attempt, with jitter.</summary>
    public TimeSpan InitialBackoff { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary><c>MaxBackoff</c>: cap of the retry delay. Default 60 s.</summary>
    public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// <c>MaxBacklogAge</c>: <c>/readyz</c> fails while this tenant's oldest undelivered event is older than this.
    /// Default 15 minutes.
    /// </summary>
    public TimeSpan MaxBacklogAge { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary>
    /// <c>MaxAttempts</c>: delivery attempts before an event goes to the dead-letter queue; 0 for no limit (then only
    /// <see cref="MaxAge"/> ends retries). Default 0.
    /// </summary>
    public int MaxAttempts { get; set; }

    /// <summary>
    /// <c>MaxAge</c>: how long after FastIngest received an event it is still retried; past it, the next failure sends
    /// it to the dead-letter queue. Default 1 day (Meta itself retries for up to 7 days).
    /// </summary>
    public TimeSpan MaxAge { get; set; } = TimeSpan.FromDays(1);

    /// <summary>
    /// <c>BreakerFailures</c>: transient failures in a row (over all lanes) that open the circuit breaker of this
    /// tenant's bot URL; while open, no send goes out until a single half-open probe gets through. 0 turns the breaker
    /// off. Default 5.
    /// </summary>
    public int BreakerFailures { get; set; } = 5;

    /// <summary>
    /// <c>BreakDuration</c>: how long the breaker stays open before its first probe; each failed probe doubles it, up
    /// to <see cref="MaxBackoff"/> (or this, if longer). Default 5 s.
    /// </summary>
    public TimeSpan BreakDuration { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// <c>StaleStatuses</c>: what to do with a status webhook behind the message's delivery state (a
    /// <c>delivered</c> after <c>read</c>, anything after <c>failed</c>). <see cref="StaleStatusHandling.Forward"/>
    /// (default) sends it with <c>X-FastIngest-Stale: true</c>; <see cref="StaleStatusHandling.Drop"/> records it in
    /// the history and does not send it. (A string, so that a bad value is reported with its key.)
    /// </summary>
    public string StaleStatuses { get; set; } = nameof(StaleStatusHandling.Forward);

    /// <summary><see cref="StaleStatuses"/> parsed (case-insensitive); <see cref="StaleStatusHandling.Forward"/> for anything else (validation refuses that).</summary>
    public StaleStatusHandling StaleStatusHandling
        => Enum.TryParse<StaleStatusHandling>(StaleStatuses, ignoreCase: true, out var v) ? v : StaleStatusHandling.Forward;
}

/// <summary>Values of <c>Forward:StaleStatuses</c>.</summary>
public enum StaleStatusHandling
{
    /// <summary>Forward stale statuses, marked with <c>X-FastIngest-Stale: true</c>.</summary>
    Forward,

    /// <summary>Do not forward stale statuses (they are still in the message's history).</summary>
    Drop,
}

/// <summary>
/// <c>FastIngest:Outbound</c>: the send tier. Sends are queued durably under <c>DataDir/outbound/</c> and go to
/// <c>{GraphUrl}/{version}/{phone_number_id}/messages</c> (Meta's Cloud API "Send messages" endpoint).
/// </summary>
public sealed class OutboundOptions
{
    /// <summary><c>GraphUrl</c>: base URL of Meta's Graph API. Default <c>https://graph.facebook.com</c>.</summary>
    public string GraphUrl { get; set; } = "https://graph.facebook.com";

    /// <summary><c>GraphVersion</c>: the Graph API version of FastIngest's own sends (the holding message); bots' sends keep the version of their request path. Default <c>v23.0</c>.</summary>
    public string GraphVersion { get; set; } = "v23.0";

    /// <summary><c>Timeout</c>: per request to the Graph API; a timeout is retried like a 5xx. Default 20 s.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary><c>MaxInFlight</c>: requests to the Graph API in flight at once, over all tenants. Default 256.</summary>
    public int MaxInFlight { get; set; } = 256;

    /// <summary><c>MaxBodyBytes</c>: largest send body accepted, in bytes; larger gets 413. Default 64 KiB.</summary>
    public int MaxBodyBytes { get; set; } = 64 * 1024;

    /// <summary><c>InitialBackoff</c>: first retry delay of a send (doubles each retry, with jitter). Default 1 s.</summary>
    public TimeSpan InitialBackoff { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary><c>MaxBackoff</c>: cap of the retry delay. Default 60 s.</summary>
    public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary><c>MaxAttempts</c>: attempts of a send that fails transiently (5xx, timeout, 131000) before it ends as failed. Default 8.</summary>
    public int MaxAttempts { get; set; } = 8;

    /// <summary><c>MaxAge</c>: a send still not accepted this long after it was queued ends as failed. Default 1 day.</summary>
    public TimeSpan MaxAge { get; set; } = TimeSpan.FromDays(1);

    /// <summary><c>Retention</c>: how long a send is remembered (idempotency keys, <c>GET /v1/outbound/{id}</c>, lifecycle). Default 7 days.</summary>
    public TimeSpan Retention { get; set; } = TimeSpan.FromDays(7);

    /// <summary>
    /// <c>RateRecoveryInterval</c>: after Meta answers a throttling code (130429, 131056, 80007), the bucket's rate is
    /// halved; each interval without another one gives back a tenth of the configured rate. Default 5 s.
    /// </summary>
    public TimeSpan RateRecoveryInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary><c>PausedRetryInterval</c>: a tenant paused by an expired token (code 190) tries its next send again after this. Default 5 minutes.</summary>
    public TimeSpan PausedRetryInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary><c>MaxWait</c>: the most a <c>Prefer: wait=N</c> request waits for Meta's answer. Default 30 s.</summary>
    public TimeSpan MaxWait { get; set; } = TimeSpan.FromSeconds(30);
}

/// <summary><c>FastIngest:Tenants:{i}:Outbound</c>: one tenant's sends.</summary>
public sealed class TenantOutboundOptions
{
    /// <summary><c>PhoneNumberIds</c>: the business phone numbers (<c>phone_number_id</c>) this tenant sends from; a send to another is 404.</summary>
    public List<string> PhoneNumberIds { get; set; } = [];

    /// <summary>
    /// <c>AccessToken</c>: the Meta access token sends go out with. Empty: the bot's own <c>Authorization</c> header is
    /// passed through to Meta, on top of its bot token in <c>X-FastIngest-Bot-Token</c>; the passed-through token is
    /// held in memory only, never written to disk.
    /// </summary>
    public string? AccessToken { get; set; }

    /// <summary>
    /// <c>AccessTokens:{n}</c>: more Meta access tokens after <see cref="AccessToken"/>. Sends use the first; when Meta
    /// refuses the one in use with code 190 (expired or revoked), the next one takes over at once (the refused send goes
    /// again with it); only when none is left is the tenant paused. A reload starts from the first again.
    /// </summary>
    public List<string> AccessTokens { get; set; } = [];

    /// <summary>
    /// <c>Provider</c>: where sends go. <c>Meta</c> (default): <c>POST {Outbound:GraphUrl}/{version}/{phone_number_id}/messages</c>
    /// with <c>Authorization: Bearer</c>. <c>360dialog</c>, for a number hosted at 360dialog: <c>POST {BaseUrl}/messages</c>
    /// (no version, no phone number id in the path: 360dialog adds it) with header <c>D360-API-KEY: {ApiKey}</c>, the
    /// same body and the same answer and error shapes as Meta's Cloud API (360dialog's docs, "The Basics": base URL
    /// <c>https://waba-v2.360dialog.io</c>, <c>POST /messages</c>, <c>D360-API-KEY</c>). The bot calls FastIngest the same way for both.
    /// </summary>
    public string Provider { get; set; } = "Meta";

    /// <summary><c>BaseUrl</c>: 360dialog's API (default <c>https://waba-v2.360dialog.io</c>; other regions, tests).</summary>
    public string BaseUrl { get; set; } = "https://waba-v2.360dialog.io";

    /// <summary><c>ApiKey</c>: the number's 360dialog API key (<c>D360-API-KEY</c>); required with Provider 360dialog; never logged.</summary>
    public string? ApiKey { get; set; }

    /// <summary>
    /// <c>BotToken</c>: the credential the bot presents to FastIngest (at least 16 characters), required for every tenant
    /// with <see cref="PhoneNumberIds"/>: as <c>Authorization: Bearer {BotToken}</c> when the tenant has an
    /// <see cref="AccessToken"/>, as <c>X-FastIngest-Bot-Token: {BotToken}</c> when the bot's own token is passed through.
    /// </summary>
    public string? BotToken { get; set; }

    /// <summary><c>BotTokens:{n}</c>: more values of the same credential, each accepted like <see cref="BotToken"/> (rotation: add the new one, move the bot, remove the old one).</summary>
    public List<string> BotTokens { get; set; } = [];

    /// <summary><c>PhoneNumberRate</c>: messages/s per phone number (Meta's throughput tier: 80 by default, up to 1,000). Default 80.</summary>
    public double PhoneNumberRate { get; set; } = 80;

    /// <summary><c>Rate</c>: the platform's own quota for this tenant, messages/s over all its numbers; 0 (default) for none.</summary>
    public double Rate { get; set; }

    /// <summary><c>PairInterval</c>: one message per this to the same customer from the same number, after the burst (Meta's pair rate limit). Default 6 s.</summary>
    public TimeSpan PairInterval { get; set; } = TimeSpan.FromSeconds(6);

    /// <summary><c>PairBurst</c>: messages to one customer that may go at once before <see cref="PairInterval"/> applies. Default 45.</summary>
    public int PairBurst { get; set; } = 45;

    /// <summary>
    /// <c>HoldingMessage</c>: text sent to a customer who writes while delivery to the bot has been failing for
    /// <see cref="HoldingAfter"/>; once per customer per outage, inside the 24-hour window. Empty (default): off.
    /// </summary>
    public string? HoldingMessage { get; set; }

    /// <summary><c>HoldingAfter</c>: how long delivery to the bot must have been failing before the holding message goes out. Default 2 minutes.</summary>
    public TimeSpan HoldingAfter { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// <c>DefaultWait</c>: how long a send without a <c>Prefer</c> header waits for Meta's answer, which is then returned
    /// as Meta gave it (the wamid a bot written against Meta stores to match status webhooks); past it, or with
    /// <c>Prefer: respond-async</c>, the answer is 202 with FastIngest's id. <c>Prefer: wait=N</c> still decides per
    /// request. Between 0 (always 202) and <c>Outbound:MaxWait</c>; default 0.
    /// </summary>
    public TimeSpan DefaultWait { get; set; }
}
