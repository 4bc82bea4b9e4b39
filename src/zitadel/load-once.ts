/**
 * `load` called once and its promise shared by every caller, for `maxAgeMs` when given (else for good). A
 * failure is not kept: the next call tries again.
 */
export function loadOnce<T>(load: () => Promise<T>, maxAgeMs = Infinity): () => Promise<T> {
  let loaded: { promise: Promise<T>; until: number } | undefined;
  return () => {
    if (!loaded || loaded.until <= Date.now()) {
      const current = { promise: load(), until: Date.now() + maxAgeMs };
      loaded = current;
      current.promise.catch(() => {
        if (loaded === current) loaded = undefined;
      });
    }
    return loaded.promise;
  };
}
