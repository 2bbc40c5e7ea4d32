using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using FastIngest.Delivery;
using FastIngest.Dispatch;
using FastIngest.Hosting;
using FastIngest.Ingest;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace FastIngest.Admin;

/// <summary>
/// The operator's HTTP API, guarded by <c>Authorization: Bearer {FastIngest:AdminToken}</c> (401 without it; every
/// route answers 404 while no token is configured). JSON in, JSON out:
/// <list type="bullet">
/// <item><c>GET /admin/deadletters[?tenant=T][&amp;destination=D]</c>: <c>{"count":n,"items":[entry...]}</c>, oldest first, where an entry is
/// <c>{"id","tenant","destination","eventId","attempts","reason","receivedAt","deadLetteredAt","payloadBytes"}</c> (times ISO 8601 UTC;
/// <c>destination</c> is the name of the destination that gave up, <c>forward</c> for a tenant without <c>Destinations</c>).</item>
/// <item><c>GET /admin/deadletters/{id}</c>: the entry plus <c>"payload"</c>, the JSON that was forwarded; 404 if not open.</item>
/// <item><c>POST /admin/deadletters/replay[?tenant=T[&amp;destination=D] | ?id=N]</c>: puts entries back for delivery to the
/// destination that gave up on each, and to no other; <c>{"replayed":n}</c>.</item>
/// <item><c>DELETE /admin/deadletters/{id}</c>: discards one; <c>{"discarded":1}</c>, 404 if not open.</item>
/// <item><c>GET /admin/quarantine[?tenant=T]</c>: open quarantined payloads, <c>{"count","items":[{"id","tenant","reason","receivedAt","payloadBytes"}]}</c>;
/// <c>GET /admin/quarantine/{id}</c> adds <c>"payloadBase64"</c> and, when it is UTF-8, <c>"payloadText"</c>;
/// <c>POST /admin/quarantine/replay[?tenant=T | ?id=N]</c> runs them through today's parser, <c>{"replayed","unparseable"}</c>;
/// <c>DELETE /admin/quarantine/{id}</c> discards one.</item>
/// <item><c>GET /admin/damage</c>: damage start-up found and handled (a log range cut out, a store started empty),
/// <c>{"count","items":[{"id","store","foundAt","detail"}]}</c>; each open entry fails <c>/readyz</c>, across restarts;
/// <c>POST /admin/damage/clear</c> clears them all once handled, <c>{"cleared":n}</c>.</item>
/// <item><c>GET /v1/messages/{wamid}[?tenant=T]</c>: the message's delivery state from the status webhooks received,
/// <c>{"tenant","wamid","status","timestamp","changes","history":[{"status","timestamp","receivedAt","stale"}...]}</c>
/// (<c>timestamp</c> is Meta's, Unix seconds; history oldest first, the last 6); 404 if no status of it is known.
/// Without <c>tenant</c>, every tenant is searched.</item>
/// </list>
/// </summary>
public static class AdminEndpoints
{
    /// <summary>Adds the admin routes for <paramref name="engine"/>; <paramref name="adminToken"/> null or empty disables them (404).</summary>
    public static void MapFastIngestAdmin(this IEndpointRouteBuilder endpoints, FastIngestEngine engine, string? adminToken)
        => endpoints.MapFastIngestAdmin(engine, new AdminTokens(string.IsNullOrEmpty(adminToken) ? [] : [adminToken]));

    /// <summary>
    /// Adds the admin routes for <paramref name="engine"/>, each guarded by any of <paramref name="adminTokens"/>
    /// (<c>AdminToken</c> and <c>AdminTokens:{n}</c>, for a rotation, as they are at each request); none disables them (404).
    /// </summary>
    public static void MapFastIngestAdmin(this IEndpointRouteBuilder endpoints, FastIngestEngine engine, AdminTokens adminTokens)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(adminTokens);
        var token = adminTokens;
        var queue = engine.DeadLetters;

        endpoints.MapMethods("/admin/damage", ["GET"], Guard(token, context => Json(context, 200, w =>
        {
            var open = engine.Damage.Open;
            w.WriteNumber("count", open.Count);
            w.WriteStartArray("items");
            foreach (var d in open)
            {
                w.WriteStartObject();
                w.WriteNumber("id", d.Id);
                w.WriteString("store", d.Store);
                w.WriteString("foundAt", d.FoundAt.UtcDateTime.ToString("O", CultureInfo.InvariantCulture));
                w.WriteString("detail", d.Detail);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        })));

        endpoints.MapMethods("/admin/damage/clear", ["POST"], Guard(token, context =>
        {
            var cleared = engine.Damage.Clear();
            return Json(context, 200, w => w.WriteNumber("cleared", cleared));
        }));

        endpoints.MapMethods("/admin/deadletters", ["GET"], Guard(token, context => List(context, queue.List(TenantFilter(context), DestinationFilter(context)), WriteEntry)));

        endpoints.MapMethods("/admin/deadletters/{id:long}", ["GET"], Guard(token, context =>
        {
            var id = Id(context);
            if (queue.Find(id) is not { } entry || queue.ReadPayload(id) is not { } payload)
                return Json(context, 404, w => w.WriteString("error", $"no open dead letter {id}"));
            return Json(context, 200, w =>
            {
                WriteEntry(w, entry);
                w.WritePropertyName("payload");
                w.WriteRawValue(payload, skipInputValidation: false);
            });
        }));

        endpoints.MapMethods("/admin/deadletters/{id:long}", ["DELETE"], Guard(token, async context =>
        {
            var id = Id(context);
            if (!await queue.ResolveAsync(id, DeadLetterResolution.Discarded, context.RequestAborted).ConfigureAwait(false))
            {
                await Json(context, 404, w => w.WriteString("error", $"no open dead letter {id}")).ConfigureAwait(false);
                return;
            }
            await Json(context, 200, w => w.WriteNumber("discarded", 1)).ConfigureAwait(false);
        }));

        endpoints.MapMethods("/admin/deadletters/replay", ["POST"], Guard(token, async context =>
        {
            if (!TryIdFilter(context, out var id))
            {
                await Json(context, 400, w => w.WriteString("error", "id must be a dead letter id (a number)")).ConfigureAwait(false);
                return;
            }
            var replayed = await engine.ReplayDeadLettersAsync(TenantFilter(context), id, DestinationFilter(context), context.RequestAborted).ConfigureAwait(false);
            await Json(context, 200, w => w.WriteNumber("replayed", replayed)).ConfigureAwait(false);
        }));

        MapMessages(endpoints, engine, token);
        MapQuarantine(endpoints, engine, token);
    }

    private static void MapQuarantine(IEndpointRouteBuilder endpoints, FastIngestEngine engine, AdminTokens token)
    {
        var quarantine = engine.Quarantine;
        endpoints.MapMethods("/admin/quarantine", ["GET"], Guard(token, context => List(context, quarantine.List(TenantFilter(context)), WriteQuarantined)));

        endpoints.MapMethods("/admin/quarantine/{id:long}", ["GET"], Guard(token, context =>
        {
            var id = Id(context);
            if (quarantine.Find(id) is not { } found)
                return Json(context, 404, w => w.WriteString("error", $"no open quarantined payload {id}"));
            return Json(context, 200, w =>
            {
                WriteQuarantined(w, found.Entry);
                w.WriteBase64String("payloadBase64", found.Body);
                if (System.Text.Unicode.Utf8.IsValid(found.Body))
                    w.WriteString("payloadText", Encoding.UTF8.GetString(found.Body));
            });
        }));

        endpoints.MapMethods("/admin/quarantine/{id:long}", ["DELETE"], Guard(token, async context =>
        {
            var id = Id(context);
            if (!await quarantine.ResolveAsync(id, QuarantineResolution.Discarded, context.RequestAborted).ConfigureAwait(false))
            {
                await Json(context, 404, w => w.WriteString("error", $"no open quarantined payload {id}")).ConfigureAwait(false);
                return;
            }
            await Json(context, 200, w => w.WriteNumber("discarded", 1)).ConfigureAwait(false);
        }));

        endpoints.MapMethods("/admin/quarantine/replay", ["POST"], Guard(token, async context =>
        {
            if (!TryIdFilter(context, out var id))
            {
                await Json(context, 400, w => w.WriteString("error", "id must be a quarantine id (a number)")).ConfigureAwait(false);
                return;
            }
            var (replayed, unparseable) = await engine.ReplayQuarantineAsync(TenantFilter(context), id, context.RequestAborted).ConfigureAwait(false);
            await Json(context, 200, w =>
            {
                w.WriteNumber("replayed", replayed);
                w.WriteNumber("unparseable", unparseable);
            }).ConfigureAwait(false);
        }));
    }

    private static void WriteQuarantined(Utf8JsonWriter w, QuarantinedPayload q)
    {
        w.WriteNumber("id", q.Id);
        w.WriteString("tenant", q.Tenant);
        w.WriteString("reason", q.Reason);
        w.WriteString("receivedAt", DateTimeOffset.FromUnixTimeMilliseconds(q.ReceivedUnixMs));
        w.WriteNumber("payloadBytes", q.PayloadBytes);
    }

    private static void MapMessages(IEndpointRouteBuilder endpoints, FastIngestEngine engine, AdminTokens token)
    {
        endpoints.MapMethods("/v1/messages/{wamid}", ["GET"], Guard(token, context =>
        {
            var wamid = (string)context.Request.RouteValues["wamid"]!;
            var tenant = TenantFilter(context);
            MessageDelivery? found = null;
            foreach (var t in engine.Tenants.All)
            {
                if ((tenant is null || t.Id == tenant) && engine.DeliveryStates.Find(t.Id, wamid) is { } state)
                {
                    found = state;
                    break;
                }
            }
            if (found is null)
                return Json(context, 404, w => w.WriteString("error", $"no status of {wamid} is known"));
            return Json(context, 200, w =>
            {
                w.WriteString("tenant", found.Tenant);
                w.WriteString("wamid", found.Wamid);
                w.WriteString("status", DeliveryState.Name(found.Status));
                w.WriteNumber("timestamp", found.MetaUnixSeconds);
                w.WriteNumber("changes", found.Changes);
                w.WriteStartArray("history");
                foreach (var change in found.History)
                {
                    w.WriteStartObject();
                    w.WriteString("status", DeliveryState.Name(change.Status));
                    w.WriteNumber("timestamp", change.MetaUnixSeconds);
                    w.WriteString("receivedAt", DateTimeOffset.FromUnixTimeMilliseconds(change.ReceivedUnixMs));
                    w.WriteBoolean("stale", change.Stale);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            });
        }));
    }

    /// <summary><c>{"count":n,"items":[...]}</c>, each item an object written by <paramref name="write"/>.</summary>
    private static Task List<T>(HttpContext context, IReadOnlyList<T> items, Action<Utf8JsonWriter, T> write) => Json(context, 200, w =>
    {
        w.WriteNumber("count", items.Count);
        w.WriteStartArray("items");
        foreach (var item in items)
        {
            w.WriteStartObject();
            write(w, item);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    });

    /// <summary>The <c>?tenant=</c> filter, or null for all tenants.</summary>
    private static string? TenantFilter(HttpContext context)
        => context.Request.Query["tenant"].ToString() is { Length: > 0 } tenant ? tenant : null;

    /// <summary>The <c>?destination=</c> filter (a destination's name), or null.</summary>
    private static string? DestinationFilter(HttpContext context)
        => context.Request.Query["destination"].ToString() is { Length: > 0 } destination ? destination : null;

    /// <summary>The <c>?id=</c> filter (null when absent); false when it is there but not a number.</summary>
    private static bool TryIdFilter(HttpContext context, out long? id)
    {
        id = null;
        if (!context.Request.Query.TryGetValue("id", out var value))
            return true;
        if (!long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed))
            return false;
        id = parsed;
        return true;
    }

    /// <summary>
    /// Adds <c>POST /admin/reload</c> (guarded like the other admin routes): reads the configuration again and applies
    /// it (<see cref="ConfigReload"/>). 200 <c>{"added":[ids],"removed":[ids],"rotated":[ids],"adminTokensChanged":bool}</c>;
    /// 400 <c>{"error":"...","key":"FastIngest:..."}</c> when refused (nothing changed).
    /// </summary>
    public static void MapFastIngestReload(this IEndpointRouteBuilder endpoints, ConfigReload reload, AdminTokens adminTokens)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(reload);
        ArgumentNullException.ThrowIfNull(adminTokens);
        endpoints.MapMethods("/admin/reload", ["POST"], Guard(adminTokens, context =>
        {
            var outcome = reload.ReloadNow();
            if (outcome.Error is not null)
            {
                return Json(context, 400, w =>
                {
                    w.WriteString("error", outcome.Error);
                    w.WriteString("key", outcome.Key);
                });
            }
            return Json(context, 200, w =>
            {
                WriteIds(w, "added", outcome.Added);
                WriteIds(w, "removed", outcome.Removed);
                WriteIds(w, "rotated", outcome.Rotated);
                w.WriteBoolean("adminTokensChanged", outcome.AdminTokensChanged);
            });
        }));

        static void WriteIds(Utf8JsonWriter w, string name, IReadOnlyList<string> ids)
        {
            w.WriteStartArray(name);
            foreach (var id in ids)
                w.WriteStringValue(id);
            w.WriteEndArray();
        }
    }

    private static RequestDelegate Guard(AdminTokens tokens, RequestDelegate handler) => context =>
    {
        if (tokens.Current is null)
            return Json(context, 404, w => w.WriteString("error", "the admin API is off: set FastIngest:AdminToken"));
        if (!tokens.Accepts(context.Request.Headers.Authorization.ToString()))
        {
            context.Response.Headers.WWWAuthenticate = "Bearer";
            return Json(context, 401, w => w.WriteString("error", "Authorization: Bearer <FastIngest:AdminToken> is required"));
        }
        return handler(context);
    };

    private static long Id(HttpContext context)
        => long.Parse((string)context.Request.RouteValues["id"]!, CultureInfo.InvariantCulture);

    private static void WriteEntry(Utf8JsonWriter w, DeadLetter d)
    {
        w.WriteNumber("id", d.Id);
        w.WriteString("tenant", d.Tenant);
        w.WriteString("destination", d.Destination);
        w.WriteString("eventId", d.EventId);
        w.WriteNumber("attempts", d.Attempts);
        w.WriteString("reason", d.Reason);
        w.WriteString("receivedAt", DateTimeOffset.FromUnixTimeMilliseconds(d.ReceivedUnixMs));
        w.WriteString("deadLetteredAt", DateTimeOffset.FromUnixTimeMilliseconds(d.DeadLetteredUnixMs));
        w.WriteNumber("payloadBytes", d.PayloadBytes);
    }

    internal static async Task Json(HttpContext context, int status, Action<Utf8JsonWriter> body)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        await using var writer = new Utf8JsonWriter(context.Response.BodyWriter);
        writer.WriteStartObject();
        body(writer);
        writer.WriteEndObject();
        await writer.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }
}
