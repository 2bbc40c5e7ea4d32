using System.Buffers;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using FastIngest.Admin;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace FastIngest.Outbound;

/// <summary>
/// The bots' side of the send tier:
/// <list type="bullet">
/// <item><c>POST /graph/{version}/{phone_number_id}/messages</c>: Meta's Cloud API "Send messages" request, unchanged
/// (a bot switches by changing its base URL); the credentials are below. Answers: 202 with
/// <c>{"messaging_product":"whatsapp","contacts":[{"input","wa_id"}],"messages":[{"id":"fo-…","message_status":"queued"}]}</c>
/// and <c>Location: /v1/outbound/{id}</c> once the send is durable; with <c>Prefer: wait=N</c> (seconds, at most
/// <c>Outbound:MaxWait</c>), or without a <c>Prefer</c> header for a tenant with <c>Outbound:DefaultWait</c>, Meta's own
/// status and body once Meta answers within that time (<c>Prefer: respond-async</c>: always the 202); with an <c>Idempotency-Key</c>
/// (or the same body again) the first send's id with its status now (or, with <c>Prefer: wait</c>, Meta's answer to it)
/// and <c>Idempotent-Replayed: true</c>, never a second send.
/// Errors have Meta's shape <c>{"error":{"message","type","code","error_data":{"details"}}}</c>: 400 code 100 for a
/// malformed body (<c>fastingest_field</c> names the field), 400 code 131047 for a free-form message outside the
/// 24-hour window (refused before Meta), 401 code 190 for a missing or wrong token, 404 for an unknown phone number or
/// version, 413 over <c>Outbound:MaxBodyBytes</c>, 415 for a body that is not JSON, 503 when it cannot be queued.</item>
/// <item>The same route takes Meta's read receipts, which are not sends (<see cref="ReadReceipt"/>: mark as read, the
/// typing indicator): passed straight to Meta, Meta's answer returned as Meta gave it (503 code 131000 when Meta does
/// not answer within <c>Outbound:Timeout</c>), no 24-hour window check, counted in
/// <c>fastingest_outbound_read_receipts_total</c>.</item>
/// <item><c>GET /v1/outbound/{id}</c>: the send's state and history (the tenant's bot token, as <c>Authorization: Bearer</c>
/// or <see cref="BotTokenHeader"/>, or the admin token).</item>
/// </list>
/// Every call proves the bot's credential (<c>Outbound:BotToken</c>): as <c>Authorization: Bearer {BotToken}</c> when the
/// tenant has an <c>Outbound:AccessToken</c>; when it has none, as <see cref="BotTokenHeader"/> with the bot's own Meta token in
/// <c>Authorization</c> (passed through to Meta, held in memory only; idempotency keys are then scoped to that token).
/// </summary>
public static class OutboundEndpoints
{
    /// <summary>The header a pass-through bot proves its <c>Outbound:BotToken</c> with: <c>X-FastIngest-Bot-Token</c>.</summary>
    public const string BotTokenHeader = "X-FastIngest-Bot-Token";

    /// <summary>Adds the routes; without sending tenants every send is 404.</summary>
    public static void MapFastIngestOutbound(this IEndpointRouteBuilder endpoints, OutboundService outbound, string? adminToken)
        => endpoints.MapFastIngestOutbound(outbound, new Admin.AdminTokens(string.IsNullOrEmpty(adminToken) ? [] : [adminToken]));

    /// <summary>As the single-token overload, with every accepted admin token (<c>AdminToken</c>, <c>AdminTokens:{n}</c>).</summary>
    public static void MapFastIngestOutbound(this IEndpointRouteBuilder endpoints, OutboundService outbound, Admin.AdminTokens adminTokens)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(outbound);
        ArgumentNullException.ThrowIfNull(adminTokens);
        var admin = adminTokens;
        endpoints.MapPost("/graph/{version}/{phoneNumberId}/messages", context => SendAsync(context, outbound));
        endpoints.MapGet("/v1/outbound/{id}", context => ShowAsync(context, outbound, admin));
    }

    private static Task Error(HttpContext context, int status, int code, string message, string? details = null, string? field = null, string type = "OAuthException")
        => AdminEndpoints.Json(context, status, w =>
        {
            w.WriteStartObject("error");
            w.WriteString("message", message);
            w.WriteString("type", type);
            w.WriteNumber("code", code);
            if (details is not null)
            {
                w.WriteStartObject("error_data");
                w.WriteString("messaging_product", "whatsapp");
                w.WriteString("details", details);
                w.WriteEndObject();
            }
            if (field is not null)
                w.WriteString("fastingest_field", field);
            w.WriteEndObject();
        });

    /// <summary>Mark as read (and the typing indicator): straight to Meta, Meta's answer back as Meta gave it.</summary>
    private static async Task ReadReceiptAsync(HttpContext context, OutboundService outbound, OutboundLane lane, string version, string phone, byte[] body, string authorization, string? field, string? problem)
    {
        if (field is not null)
        {
            await Error(context, 400, MetaErrors.InvalidParameter, $"(#100) Invalid parameter: {field} {problem}", $"{field} {problem}", field).ConfigureAwait(false);
            return;
        }
        var answer = await outbound.ForwardReadReceiptAsync(lane, version, phone, body, authorization, context.RequestAborted).ConfigureAwait(false);
        if (answer is not { } meta)
        {
            context.Response.Headers.RetryAfter = "1";
            await Error(context, 503, 131000, "Something went wrong: Meta did not answer the read receipt; retry", type: "FastIngestError").ConfigureAwait(false);
            return;
        }
        context.Response.StatusCode = meta.Status;
        context.Response.ContentType = meta.ContentType ?? "application/json";
        await context.Response.Body.WriteAsync(meta.Body, context.RequestAborted).ConfigureAwait(false);
    }

    private static async Task SendAsync(HttpContext context, OutboundService outbound)
    {
        var version = (string)context.Request.RouteValues["version"]!;
        var phone = (string)context.Request.RouteValues["phoneNumberId"]!;
        if (!GraphVersions.IsValid(version))
        {
            await Error(context, 404, 100, $"Unknown path: '{version}' is not a Graph API version (e.g. v23.0)").ConfigureAwait(false);
            return;
        }
        if (outbound.LaneOf(phone) is not { } lane)
        {
            await Error(context, 404, 100, $"Unsupported post request: phone_number_id {phone} is not configured here (FastIngest:Tenants:*:Outbound:PhoneNumberIds)").ConfigureAwait(false);
            return;
        }
        var authorization = context.Request.Headers.Authorization.ToString();
        var passThrough = lane.Bearer is null;
        if (passThrough
                ? !lane.IsBotToken(context.Request.Headers[BotTokenHeader].ToString()) || !authorization.StartsWith("Bearer ", StringComparison.Ordinal) || authorization.Length < 8
                : !lane.IsBotToken(authorization, "Bearer "))
        {
            context.Response.Headers.WWWAuthenticate = "Bearer";
            await Error(context, 401, 190, passThrough
                ? $"{BotTokenHeader}: <Outbound:BotToken> and Authorization: Bearer <the bot's Meta access token> are required (this tenant has no Outbound:AccessToken: the bot's token is passed through to Meta)"
                : "Authorization: Bearer <Outbound:BotToken> is required").ConfigureAwait(false);
            return;
        }
        if (context.Request.ContentType is { Length: > 0 } ct && !ct.StartsWith("application/json", StringComparison.OrdinalIgnoreCase))
        {
            await Error(context, 415, 100, "Content-Type must be application/json").ConfigureAwait(false);
            return;
        }
        var max = outbound.MaxBodyBytes;
        if (context.Request.ContentLength > max)
        {
            await Error(context, 413, 100, $"The body is over Outbound:MaxBodyBytes ({max} bytes)").ConfigureAwait(false);
            return;
        }
        var body = await ReadBodyAsync(context, max).ConfigureAwait(false);
        if (body is null)
        {
            await Error(context, 413, 100, $"The body is over Outbound:MaxBodyBytes ({max} bytes)").ConfigureAwait(false);
            return;
        }
        if (ReadReceipt.Is(body, out var receiptField, out var receiptProblem))
        {
            await ReadReceiptAsync(context, outbound, lane, version, phone, body, authorization, receiptField, receiptProblem).ConfigureAwait(false);
            return;
        }
        if (SendRequest.TryRead(body, out var field, out var problem) is not { } request)
        {
            await Error(context, 400, MetaErrors.InvalidParameter, $"(#100) Invalid parameter: {field} {problem}", $"{field} {problem}", field).ConfigureAwait(false);
            return;
        }
        var key = context.Request.Headers["Idempotency-Key"].ToString();
        if (key.Length > 255 || key.Any(char.IsControl))
        {
            await Error(context, 400, MetaErrors.InvalidParameter, "(#100) Invalid parameter: Idempotency-Key must be at most 255 printable characters", field: "Idempotency-Key").ConfigureAwait(false);
            return;
        }
        if (key.Length == 0)
            key = OutboundService.BodyKey(phone, body);
        if (passThrough)
            key = OutboundService.CallerKey(key, authorization); // another Meta token is another caller: its keys are its own

        SubmitResult result;
        try
        {
            result = await outbound.SubmitAsync(lane, version, phone, request, body, key, authorization).ConfigureAwait(false);
            await result.Durable.ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException)
        {
            context.Response.Headers.RetryAfter = "5";
            await Error(context, 503, 131000, "Something went wrong: the send could not be queued; retry", ex.Message, type: "FastIngestError").ConfigureAwait(false);
            return;
        }
        if (result.RefusedBecause is { } refusal)
        {
            context.Response.Headers["X-FastIngest-Refused"] = "customer-service-window";
            await Error(context, 400, MetaErrors.OutsideWindow, "Re-engagement message", refusal).ConfigureAwait(false);
            return;
        }
        var message = result.Message!;
        if (!result.Created)
            context.Response.Headers["Idempotent-Replayed"] = "true";
        context.Response.Headers.Location = "/v1/outbound/" + message.Id;
        context.Response.Headers["X-FastIngest-Id"] = message.Id;

        var prefer = context.Request.Headers["Prefer"].ToString();
        var wait = WaitOf(prefer, outbound.MaxWait);
        if (wait == TimeSpan.Zero && !prefer.Contains("respond-async", StringComparison.OrdinalIgnoreCase))
            wait = lane.Options.DefaultWait; // the tenant's default answer: Meta's, for bots that store the wamid
        if (wait > TimeSpan.Zero && !message.HasAnswer)
        {
            try
            {
                await message.Answered.Task.WaitAsync(wait, context.RequestAborted).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
            }
        }
        if (wait > TimeSpan.Zero && message.HasAnswer)
        {
            if (prefer.Contains("wait=", StringComparison.OrdinalIgnoreCase))
                context.Response.Headers["Preference-Applied"] = "wait";
            await WriteAnswerAsync(context, message).ConfigureAwait(false);
            return;
        }
        await AdminEndpoints.Json(context, 202, w => WriteSent(w, message.To, message.Id, OutboundMessage.Name(message.Status))).ConfigureAwait(false);
    }

    /// <summary>Meta's answer as Meta gave it; rebuilt in Meta's shape when only the book has it (after a restart).</summary>
    private static async Task WriteAnswerAsync(HttpContext context, OutboundMessage message)
    {
        if (message.MetaAnswer is { } answer)
        {
            context.Response.StatusCode = answer.Status;
            context.Response.ContentType = "application/json";
            await context.Response.Body.WriteAsync(answer.Body, context.RequestAborted).ConfigureAwait(false);
            return;
        }
        if (message.IsTerminalFailure)
        {
            await Error(context, 400, message.ErrorCode, message.ErrorMessage ?? "failed", message.ErrorMessage).ConfigureAwait(false);
            return;
        }
        await AdminEndpoints.Json(context, 200, w => WriteSent(w, message.To, message.Wamid!, null)).ConfigureAwait(false);
    }

    /// <summary>Meta's success shape: <c>"messaging_product","contacts":[{"input","wa_id"}],"messages":[{"id"[,"message_status"]}]</c>.</summary>
    private static void WriteSent(Utf8JsonWriter w, string to, string id, string? status)
    {
        w.WriteString("messaging_product", "whatsapp");
        w.WriteStartArray("contacts");
        w.WriteStartObject();
        w.WriteString("input", to);
        w.WriteString("wa_id", to);
        w.WriteEndObject();
        w.WriteEndArray();
        w.WriteStartArray("messages");
        w.WriteStartObject();
        w.WriteString("id", id);
        if (status is not null)
            w.WriteString("message_status", status);
        w.WriteEndObject();
        w.WriteEndArray();
    }

    /// <summary>N of <c>Prefer: wait=N</c> (RFC 7240), capped at <paramref name="max"/>; zero without one.</summary>
    internal static TimeSpan WaitOf(string prefer, TimeSpan max)
    {
        foreach (var part in prefer.Split([',', ';'], StringSplitOptions.TrimEntries))
        {
            if (part.StartsWith("wait=", StringComparison.OrdinalIgnoreCase)
                && double.TryParse(part.AsSpan(5), NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && seconds > 0)
                return TimeSpan.FromSeconds(Math.Min(seconds, max.TotalSeconds));
        }
        return TimeSpan.Zero;
    }

    private static async Task<byte[]?> ReadBodyAsync(HttpContext context, int max)
    {
        var reader = context.Request.BodyReader;
        while (true)
        {
            var read = await reader.ReadAsync(context.RequestAborted).ConfigureAwait(false);
            if (read.Buffer.Length > max)
            {
                reader.AdvanceTo(read.Buffer.End);
                return null;
            }
            if (read.IsCompleted)
            {
                var bytes = read.Buffer.ToArray();
                reader.AdvanceTo(read.Buffer.End);
                return bytes;
            }
            reader.AdvanceTo(read.Buffer.Start, read.Buffer.End);
        }
    }

    private static async Task ShowAsync(HttpContext context, OutboundService outbound, Admin.AdminTokens admin)
    {
        var id = (string)context.Request.RouteValues["id"]!;
        var message = await outbound.Book.FindAsync(id).ConfigureAwait(false);
        var authorization = context.Request.Headers.Authorization.ToString();
        var lane = message is null ? null : outbound.LaneOfTenant(message.Tenant);
        var allowed = admin.Accepts(authorization)
            || (lane is not null && (lane.IsBotToken(authorization, "Bearer ") || lane.IsBotToken(context.Request.Headers[BotTokenHeader].ToString())));
        if (message is null || !allowed)
        {
            // The same answer for "no such send" and "not yours": ids are not to be probed.
            await AdminEndpoints.Json(context, 404, w => w.WriteString("error", $"no send {id} known to this token")).ConfigureAwait(false);
            return;
        }
        await AdminEndpoints.Json(context, 200, w =>
        {
            w.WriteString("id", message.Id);
            w.WriteString("tenant", message.Tenant);
            w.WriteString("phone_number_id", message.PhoneNumberId);
            w.WriteString("to", message.To);
            w.WriteString("type", message.Type);
            w.WriteString("status", OutboundMessage.Name(message.Status));
            if (message.Wamid is not null)
                w.WriteString("wamid", message.Wamid);
            w.WriteNumber("attempts", message.Attempts);
            w.WriteString("queued_at", DateTimeOffset.FromUnixTimeMilliseconds(message.CreatedUnixMs));
            if (message.IsTerminalFailure)
            {
                w.WriteStartObject("error");
                w.WriteNumber("code", message.ErrorCode);
                w.WriteString("message", message.ErrorMessage ?? "");
                w.WriteEndObject();
            }
            w.WriteStartArray("history");
            foreach (var step in message.HistorySnapshot())
            {
                w.WriteStartObject();
                w.WriteString("status", OutboundMessage.Name(step.Status));
                w.WriteString("at", DateTimeOffset.FromUnixTimeMilliseconds(step.AtUnixMs));
                if (step.MetaUnixSeconds > 0)
                    w.WriteNumber("timestamp", step.MetaUnixSeconds);
                if (step.Code != 0)
                    w.WriteNumber("code", step.Code);
                if (step.Detail is not null)
                    w.WriteString("detail", step.Detail);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }).ConfigureAwait(false);
    }
}
