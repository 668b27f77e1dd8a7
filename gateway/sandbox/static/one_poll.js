// One poll in flight at a time: a poll asked for meanwhile (after an action) runs once right
// after it, so an older answer never draws over a newer one and two answers never race to
// draw the same messages. Pasted into every stand-in's page by `gateway.sandbox.pages.page`.
function onePollAtATime(fetcher) {
  let polling = null;
  let again = false;
  return async function poll() {
    if (polling) { again = true; return polling; }
    polling = (async () => {
      do { again = false; await fetcher(); } while (again);
    })();
    try { await polling; } finally { polling = null; }
  };
}
