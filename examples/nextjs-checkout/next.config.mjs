/** @type {import('next').NextConfig} */
export default {
  // The example directory is its own app: don't let Next guess a workspace
  // root from the repository's package-lock.json above it.
  outputFileTracingRoot: import.meta.dirname,
  turbopack: { root: import.meta.dirname },
};
