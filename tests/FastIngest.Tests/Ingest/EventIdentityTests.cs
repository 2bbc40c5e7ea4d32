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
