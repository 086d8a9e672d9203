// Counts the pages opened: an answer or a poller started on an earlier page sees that
// `visit` moved on and stops (pages compare the value they started with).
export let visit = 0;
export function newVisit() { return ++visit; }
