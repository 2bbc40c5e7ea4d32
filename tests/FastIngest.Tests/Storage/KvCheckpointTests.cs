using FastIngest.Storage;
using FastIngest.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace FastIngest.Tests.Storage;

/// <summary>
/// Which checkpoint a FASTER KV store recovers: always the one its manifest recorded and verified, never a newer one a
/// crash or a shutdown's cut left unrecorded and perhaps half-written (FASTER's recovery of a torn hash index dies of
/// an access violation, which no handler catches: the server could not start again).
/// </summary>
public sealed class KvCheckpointTests
{
    private static readonly DedupeKey Key = new(1, 2);

    private static TtlKvStore<long> Open(string dir) => new(dir, "test", 1 << 16, 1 << 20, TimeSpan.FromDays(1), TimeProvider.System, NullLogger.Instance);

    private static void Put(TtlKvStore<long> store, long value)
    {
        var session = store.Sessions.Rent();
        try
        {
            var key = Key;
            KvSession.Upsert(session, ref key, ref value);
        }
        finally
        {
            store.Sessions.Return(session);
        }
    }

    /// <summary>Overwrites the hash index of checkpoint <paramref name="token"/> with 0xFF bytes (a torn write); returns the checkpoint's index directory.</summary>
    private static string TearIndex(string dir, Guid token)
    {
        var index = Path.Combine(dir, "checkpoints", "index-checkpoints", token.ToString());
        foreach (var file in Directory.GetFiles(index, "ht.dat*"))
            File.WriteAllBytes(file, Enumerable.Repeat((byte)0xFF, (int)new FileInfo(file).Length).ToArray());
        return index;
    }

    [Fact]
    public async Task A_newer_checkpoint_the_manifest_does_not_record_is_removed_and_the_recorded_one_recovered()
    {
        using var dir = new TempDir();
        Guid newer;
        using (var store = Open(dir.Path))
        {
            Put(store, 42);
            await store.CheckpointAsync(); // recorded in the manifest
            Put(store, 43);
            newer = await store.CheckpointUnrecordedAsync(); // as if the process died before the manifest was rewritten
        }
        var newerIndex = TearIndex(dir.Path, newer); // ... and as if its hash index was cut mid-write by the shutdown's deadline

        using (var store = Open(dir.Path))
        {
            Assert.True(store.Sessions.Read(Key, out var value));
            Assert.Equal(42, value);
        }
        Assert.False(Directory.Exists(newerIndex));
    }

    [Fact]
    public async Task A_first_checkpoint_cut_before_it_was_recorded_is_removed_and_the_store_starts_empty()
    {
        using var dir = new TempDir();
        Guid first;
        using (var store = Open(dir.Path))
        {
            Put(store, 7);
            first = await store.CheckpointUnrecordedAsync(); // no manifest yet: the shutdown's deadline came first
        }
        var firstIndex = TearIndex(dir.Path, first);

        using (var store = Open(dir.Path))
            Assert.False(store.Sessions.Read(Key, out _)); // empty (its owner rebuilds it), not a torn recovery
        Assert.False(Directory.Exists(firstIndex));
    }

    [Fact]
    public async Task Only_the_recorded_checkpoint_is_kept()
    {
        using var dir = new TempDir();
        using (var store = Open(dir.Path))
        {
            for (var i = 0; i < 3; i++)
            {
                Put(store, i);
                await store.CheckpointAsync();
            }
        }
        Assert.Single(Directory.GetDirectories(Path.Combine(dir.Path, "checkpoints", "index-checkpoints")));
        Assert.Single(Directory.GetDirectories(Path.Combine(dir.Path, "checkpoints", "cpr-checkpoints")));
        using (var store = Open(dir.Path))
        {
            Assert.True(store.Sessions.Read(Key, out var value));
            Assert.Equal(2, value);
        }
    }
}
