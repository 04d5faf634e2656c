// At the door: the forms to complete a stop (photos, signature, recipient, notes, PIN,
// barcode, age check) and to fail one (reason and notes). The same rules as the
// server's (apps/pod/requirements.py) are checked here before anything is queued,
// so a driver offline learns what is missing while still at the door.

import { html, useEffect, useRef, useState } from "preact-htm";
import SignaturePad from "signature_pad";

export function missingProof(rules, form) {
  const out = {};
  if (!rules) return out;
  if (form.photos.length < (rules.min_photos || 0)) {
    out.photos = `Take ${rules.min_photos} photo${rules.min_photos > 1 ? "s" : ""}.`;
  }
  if (rules.signature && !form.signed) out.signature = "The recipient must sign.";
  if (rules.recipient_name && !form.recipient_name.trim()) out.recipient_name = "Enter the recipient's name.";
  if (rules.notes && !form.notes.trim()) out.notes = "Add a note.";
  if (rules.pin && !form.pin.trim()) out.pin = "Ask the customer for their delivery PIN.";
  if (rules.barcode && !form.barcode.trim()) out.barcode = "Scan the parcel's barcode.";
  if (rules.min_age && !form.age_verified) out.age_verified = `Check ID: the recipient must be ${rules.min_age} or older.`;
  return out;
}

export function ruleList(rules) {
  if (!rules) return [];
  const out = [];
  if (rules.min_photos) out.push(rules.min_photos > 1 ? `${rules.min_photos} photos` : "Photo");
  if (rules.signature) out.push("Signature");
  if (rules.recipient_name) out.push("Recipient name");
  if (rules.notes) out.push("Notes");
  if (rules.pin) out.push("PIN");
  if (rules.barcode) out.push("Barcode");
  if (rules.min_age) out.push(`Age ${rules.min_age}+`);
  return out;
}

function SignatureField({ onChange }) {
  const canvas = useRef(null);
  const pad = useRef(null);
  useEffect(() => {
    const element = canvas.current;
    const ratio = Math.max(window.devicePixelRatio || 1, 1);
    element.width = element.offsetWidth * ratio;
    element.height = element.offsetHeight * ratio;
    element.getContext("2d").scale(ratio, ratio);
    pad.current = new SignaturePad(element, { penColor: "#111827", minWidth: 1, maxWidth: 2.6 });
    pad.current.addEventListener("endStroke", () => onChange(pad.current));
    return () => pad.current.off();
  }, []);
  const clear = () => {
    pad.current.clear();
    onChange(null);
  };
  return html`
    <div class="signature-field">
      <canvas ref=${canvas} class="signature-canvas" data-testid="signature-pad" aria-label="Sign here"></canvas>
      <div class="signature-foot"><span class="muted">Sign above</span>
        <button type="button" class="btn btn-small btn-ghost" onClick=${clear}>Clear</button></div>
    </div>`;
}

function canvasBlob(pad) {
  return new Promise((resolve) => pad.canvas.toBlob(resolve, "image/png"));
}

async function scanBarcode(file) {
  const detector = new window.BarcodeDetector();
  const bitmap = await createImageBitmap(file);
  const codes = await detector.detect(bitmap);
  return codes[0]?.rawValue || "";
}

export function CompleteForm({ stop, rules, maxBytes, onSubmit, onCancel }) {
  const [photos, setPhotos] = useState([]); // [{file, url}]
  const [form, setForm] = useState({ recipient_name: "", notes: "", pin: "", barcode: "", age_verified: false });
  const [pad, setPad] = useState(null);
  const [missing, setMissing] = useState({});
  const [busy, setBusy] = useState(false);
  const [scanNote, setScanNote] = useState("");
  const canScan = "BarcodeDetector" in window;
  useEffect(() => () => photos.forEach((p) => URL.revokeObjectURL(p.url)), []);

  const set = (name) => (event) => setForm({ ...form, [name]: event.target.type === "checkbox" ? event.target.checked : event.target.value });
  const addPhotos = (event) => {
    const chosen = [...event.target.files].filter((f) => f.type.startsWith("image/") || !f.type);
    // The server refuses files over its limit; say so now, at the door, not after the sync.
    const files = chosen.filter((f) => !maxBytes || f.size <= maxBytes);
    setPhotos([...photos, ...files.map((file) => ({ file, url: URL.createObjectURL(file) }))]);
    setMissing(({ photos: _, ...rest }) => (files.length < chosen.length
      ? { ...rest, photos: `That photo is over ${Math.round(maxBytes / 1e6)} MB; take it again at a lower resolution.` }
      : rest));
    event.target.value = "";
  };
  const removePhoto = (index) => setPhotos(photos.filter((_, i) => i !== index));
  const onScan = async (event) => {
    const file = event.target.files[0];
    event.target.value = "";
    if (!file) return;
    try {
      const value = await scanBarcode(file);
      if (value) setForm((f) => ({ ...f, barcode: value }));
      setScanNote(value ? "" : "No barcode found in that picture; try again or type it.");
    } catch {
      setScanNote("This phone cannot read barcodes from pictures; type it instead.");
    }
  };

  const submit = async (event) => {
    event.preventDefault();
    const gaps = missingProof(rules, { ...form, photos, signed: Boolean(pad && !pad.isEmpty()) });
    setMissing(gaps);
    if (Object.keys(gaps).length) return;
    setBusy(true);
    try {
      const signature = pad && !pad.isEmpty() ? await canvasBlob(pad) : null;
      await onSubmit({ ...form, photos: photos.map((p) => p.file), signature });
    } finally {
      setBusy(false);
    }
  };
  const error = (name) => (missing[name] ? html`<small class="field-error" data-testid=${`missing-${name}`}>${missing[name]}</small>` : null);

  return html`
    <form class="sheet" onSubmit=${submit} data-testid="complete-form" novalidate>
      <h2>Deliver to ${stop.order.customer_name}</h2>
      <div class="field">
        <span>Photos${rules?.min_photos ? ` (at least ${rules.min_photos})` : ""}</span>
        <div class="photo-strip">
          ${photos.map((p, i) => html`
            <figure class="photo-thumb" key=${p.url}><img src=${p.url} alt=${`Photo ${i + 1}`} />
              <button type="button" class="photo-remove" aria-label=${`Remove photo ${i + 1}`} onClick=${() => removePhoto(i)}>×</button>
            </figure>`)}
          <label class="photo-add btn">
            <input type="file" accept="image/*" capture="environment" multiple onChange=${addPhotos}
                   data-testid="photo-input" />
            ${photos.length ? "Add photo" : "Take photo"}
          </label>
        </div>
        ${error("photos")}
      </div>
      <div class="field">
        <span>Signature${rules?.signature ? "" : " (optional)"}</span>
        <${SignatureField} onChange=${(p) => { setPad(p); if (p) setMissing(({ signature: _, ...rest }) => rest); }} />
        ${error("signature")}
      </div>
      <label class="field"><span>Recipient's name${rules?.recipient_name ? "" : " (optional)"}</span>
        <input type="text" name="recipient_name" value=${form.recipient_name} onInput=${set("recipient_name")} autocomplete="off" />
        ${error("recipient_name")}</label>
      ${rules?.pin ? html`
        <label class="field"><span>Delivery PIN</span>
          <input type="text" name="pin" inputmode="numeric" maxlength="12" value=${form.pin} onInput=${set("pin")} autocomplete="off" />
          ${error("pin")}</label>` : null}
      <label class="field"><span>Barcode${rules?.barcode ? "" : " (optional)"}</span>
        <div class="row">
          <input type="text" name="barcode" value=${form.barcode} onInput=${set("barcode")} autocomplete="off" />
          ${canScan ? html`<label class="btn btn-small">Scan<input type="file" accept="image/*" capture="environment" hidden onChange=${onScan} /></label>` : null}
        </div>
        ${scanNote ? html`<small class="muted">${scanNote}</small>` : null}
        ${error("barcode")}</label>
      ${rules?.min_age ? html`
        <label class="field checkbox"><input type="checkbox" name="age_verified" checked=${form.age_verified} onChange=${set("age_verified")} />
          <span>I checked ID: the recipient is ${rules.min_age} or older</span>${error("age_verified")}</label>` : null}
      <label class="field"><span>Notes${rules?.notes ? "" : " (optional)"}</span>
        <textarea name="notes" rows="2" maxlength="2000" value=${form.notes} onInput=${set("notes")}></textarea>
        ${error("notes")}</label>
      <div class="sheet-actions">
        <button type="button" class="btn btn-large" onClick=${onCancel}>Back</button>
        <button type="submit" class="btn btn-primary btn-large" disabled=${busy}>Confirm delivery</button>
      </div>
    </form>`;
}

export function FailForm({ stop, reasons, onSubmit, onCancel }) {
  const [reason, setReason] = useState("");
  const [notes, setNotes] = useState("");
  const [error, setError] = useState("");
  const submit = (event) => {
    event.preventDefault();
    if (!reason) {
      setError("Choose what went wrong.");
      return;
    }
    onSubmit({ reason, notes });
  };
  return html`
    <form class="sheet" onSubmit=${submit} data-testid="fail-form" novalidate>
      <h2>Could not deliver to ${stop.order.customer_name}</h2>
      <fieldset class="reasons">
        <legend>What went wrong?</legend>
        ${reasons.map((r) => html`
          <label class=${`reason${reason === r.code ? " is-selected" : ""}`} key=${r.code}>
            <input type="radio" name="reason" value=${r.code} checked=${reason === r.code} onChange=${() => setReason(r.code)} />
            ${r.label}
          </label>`)}
      </fieldset>
      ${error ? html`<small class="field-error">${error}</small>` : null}
      <label class="field"><span>Notes</span>
        <textarea name="notes" rows="2" maxlength="2000" value=${notes} onInput=${(e) => setNotes(e.target.value)}></textarea></label>
      <div class="sheet-actions">
        <button type="button" class="btn btn-large" onClick=${onCancel}>Back</button>
        <button type="submit" class="btn btn-danger btn-large">Report failed delivery</button>
      </div>
    </form>`;
}
