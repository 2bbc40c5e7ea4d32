using System.Text;
using FastIngest.Ingest;
using FastIngest.Parsing;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Ingest;

public sealed class EventIdentityTests
{
    private static string[] Ids(byte[] body)
    {
        using var events = new EventBuffer();
        Assert.True(WebhookParser.Parse(body, events).Success);
        var id = new byte[EventIdentity.MaxLength];
        return events.Events.ToArray().Select(e => Encoding.ASCII.GetString(id, 0, EventIdentity.Write(body, in e, id))).ToArray();
    }

    [Fact]
    public void Messages_are_named_by_wamid_and_statuses_by_wamid_and_status()
    {
        Assert.Equal(["msg:wamid.A", "msg:wamid.B"], Ids(Payloads.Messages(("wamid.A", "1", "x"), ("wamid.B", "2", "y"))));
        Assert.Equal(["status:wamid.A:sent", "status:wamid.A:read"], Ids(Payloads.Statuses(("wamid.A", "sent", "1"), ("wamid.A", "read", "1"))));
    }

    [Fact]
    public void The_same_message_in_differently_formatted_payloads_has_the_same_id()
    {
        var compact = Payloads.Text("wamid.SAME", text: "a");
        var other = Encoding.UTF8.GetBytes("{ \"entry\" : [ { \"changes\" : [ { \"value\" : { \"messages\" : [ { \"id\" : \"wamid.\\u0053AME\" } ] } } ] } ] }");
        Assert.Equal(Ids(compact), Ids(other));
    }

    [Fact]
    public void Other_changes_are_named_by_field_and_a_content_hash()
    {
        var a = Encoding.UTF8.GetBytes("{\"entry\":[{\"changes\":[{\"field\":\"account_update\",\"value\":{\"event\":\"X\"}}]}]}");
        var b = Encoding.UTF8.GetBytes("{\"entry\":[{\"changes\":[{\"field\":\"account_update\",\"value\":{\"event\":\"Y\"}}]}]}");
        var ida = Assert.Single(Ids(a));
        Assert.Matches("^change:account_update:[0-9a-f]{32}$", ida);
        Assert.Equal(ida, Assert.Single(Ids(a)));
        Assert.NotEqual(ida, Assert.Single(Ids(b)));
    }

    private static byte[] TemplateUpdate(string wabaId, string time, string status) => Encoding.UTF8.GetBytes(
        $$$"""{"entry":[{"id":"{{{wabaId}}}","time":{{{time}}},"changes":[{"value":{"event":"{{{status}}}","message_template_id":1689556908129832,"message_template_name":"order_confirmation","message_template_language":"en_US","reason":"NONE"},"field":"message_template_status_update"}]}],"object":"whatsapp_business_account"}""");

    [Fact]
    public void A_change_repeated_with_equal_values_at_another_time_is_another_event()
    {
        // APPROVED, PAUSED, then APPROVED again: the two APPROVED values are byte for byte equal; only entry[].time
        // tells them apart. Hashing only the value made the re-approval a "duplicate", answered 200 and dropped.
        var first = Assert.Single(Ids(TemplateUpdate("102290129340398", "1751247548", "APPROVED")));
        var paused = Assert.Single(Ids(TemplateUpdate("102290129340398", "1751250000", "PAUSED")));
        var again = Assert.Single(Ids(TemplateUpdate("102290129340398", "1751260000", "APPROVED")));
        Assert.Equal(3, new[] { first, paused, again }.Distinct().Count());
        Assert.Matches("^change:message_template_status_update:[0-9a-f]{32}$", again);
    }

    [Fact]
    public void A_redelivery_of_the_same_change_notification_is_the_same_event()
    {
        var id = Assert.Single(Ids(TemplateUpdate("102290129340398", "1751247548", "APPROVED")));
        Assert.Equal(id, Assert.Single(Ids(TemplateUpdate("102290129340398", "1751247548", "APPROVED"))));
    }

    [Fact]
    public void Equal_changes_of_two_WABAs_are_two_events()
    {
        Assert.NotEqual(
            Assert.Single(Ids(TemplateUpdate("102290129340398", "1751247548", "APPROVED"))),
            Assert.Single(Ids(TemplateUpdate("2949482758682047", "1751247548", "APPROVED"))));
    }

    [Fact]
    public void Events_without_an_id_are_named_by_a_hash_of_their_object()
    {
        var body = Encoding.UTF8.GetBytes("{\"entry\":[{\"changes\":[{\"value\":{\"messages\":[{\"type\":\"text\"}],\"statuses\":[{\"id\":\"wamid.Q\"}]}}]}]}");
        var ids = Ids(body);
        Assert.Matches("^msg:#[0-9a-f]{32}$", ids[0]);
        Assert.Matches("^status:#[0-9a-f]{32}$", ids[1]);
    }

    [Fact]
    public void Keys_differ_by_tenant()
    {
        var id = "msg:wamid.A"u8;
        Assert.NotEqual(EventIdentity.Key("t1"u8, id), EventIdentity.Key("t2"u8, id));
        Assert.Equal(EventIdentity.Key("t1"u8, id), EventIdentity.Key("t1"u8, id));
    }

    [Fact]
    public void Every_corpus_event_gets_an_id_usable_as_an_http_header()
    {
        if (RepoPaths.Corpus is null)
            return;
        foreach (var file in Directory.GetFiles(RepoPaths.Corpus, "*.json"))
        {
            foreach (var id in Ids(File.ReadAllBytes(file)))
            {
                Assert.InRange(id.Length, 5, EventIdentity.MaxLength);
                Assert.All(id, c => Assert.InRange(c, '!', '~'));
            }
        }
    }
}
