namespace FastIngest.Tests.Support;

/// <summary>
/// Tests that must not share the machine with the rest of the suite: they freeze the process-wide storage I/O
/// thread (a frozen disk stalls every engine in the test process), fill memory on purpose, measure allocations, or
/// check send rates against wall-clock arrival times, or start real brokers and workers, whose start-up loads both cores
/// (ShutdownTests' drain, bounded by a 5 s ShutdownTimeout, ran past its budget beside a starting RabbitMQ node).
/// xunit runs this collection on its own, after the parallel ones.
/// </summary>
[CollectionDefinition(nameof(RunsAlone), DisableParallelization = true)]
public sealed class RunsAlone;
