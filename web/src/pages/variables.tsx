export default function Page() {
  return <h1>variables</h1>;
}
