/**
 * The ctre(1) man page. No I/O here.
 *
 * @module
 */
/** The man page as roff. */
export function manPage(): string {
  return "";
}
