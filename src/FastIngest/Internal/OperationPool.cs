namespace FastIngest.Internal;

/// <summary>
/// A bounded, process-wide pool of reusable operation objects (the request path's pooled
/// <see cref="System.Threading.Tasks.Sources.IValueTaskSource"/>s): at most 4,096 kept, any thread may rent or return.
/// </summary>
internal static class OperationPool<T>
    where T : class
{
    private const int Capacity = 4096;
    private static readonly Stack<T> s_pool = new();

    /// <summary>A pooled object, or null when the pool is empty (the caller makes one).</summary>
    public static T? Rent()
    {
        lock (s_pool)
            return s_pool.TryPop(out var item) ? item : null;
    }

    /// <summary>Gives <paramref name="item"/> back (dropped when the pool is full); the caller has reset it.</summary>
    public static void Return(T item)
    {
        lock (s_pool)
        {
            if (s_pool.Count < Capacity)
                s_pool.Push(item);
        }
    }
}
