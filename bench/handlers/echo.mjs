// bench: a module handler that gives DATA back (against the built-in echo).
export default async (data) => data;
