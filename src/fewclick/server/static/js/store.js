// A small store: one value, read with get(), changed with set(patch) (the patch is merged
// into the value, which keeps its identity) and watched with subscribe(fn): every set
// calls fn(value, patch). A change made in place is told with set() and no patch.
// `subscriber`: a first fn, subscribed at once (a mode's store and the page's redraw).
export function createStore(initial, subscriber = null) {
  const value = initial;
  const subscribers = new Set(subscriber ? [subscriber] : []);
  return {
    get: () => value,
    set(patch = {}) {
      Object.assign(value, patch);
      for (const fn of subscribers) fn(value, patch);
    },
    subscribe(fn) {
      subscribers.add(fn);
      return () => subscribers.delete(fn);
    },
  };
}
